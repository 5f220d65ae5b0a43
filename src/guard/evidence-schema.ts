import { sql } from 'kysely';
import type { Db } from '../db/connection.js';
import type { Violation } from '../records/index.js';

/**
 * The `safe_run` schema holds the chain-head anchor that catches a cut log. Snapshots leave
 * it out (it changes on every append), so the guard watches it on its own: a script that
 * writes to it, truncates it or changes its tables is rewriting the evidence, and the run
 * is rolled back. The runner writes there only on its own connection.
 */
export interface EvidenceRelation {
  readonly name: string;
  readonly relfilenode: number;
  readonly writes: number;
  readonly inserted: number;
  readonly updated: number;
  readonly deleted: number;
}

/**
 * The change ledger's own writes for the script's statements, by relation name: rows its
 * triggers added (net) and updated. Those, exactly, are not a violation.
 */
export type EvidenceAllowance = ReadonlyMap<string, { readonly net: number; readonly updates: number }>;

export type EvidenceSchemaState = ReadonlyMap<number, EvidenceRelation>;

export async function readEvidenceSchema(trx: Db): Promise<EvidenceSchemaState> {
  const { rows } = await sql<{ oid: number; name: string; relfilenode: number; ins: number; upd: number; del: number }>`
    select c.oid::int8 as oid, c.relname as name,
           coalesce(pg_catalog.pg_relation_filenode(c.oid), 0)::int8 as relfilenode,
           coalesce(s.n_tup_ins, 0)::int8 as ins, coalesce(s.n_tup_upd, 0)::int8 as upd, coalesce(s.n_tup_del, 0)::int8 as del
      from pg_catalog.pg_class c
      join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      left join pg_catalog.pg_stat_xact_all_tables s on s.relid = c.oid
     where n.nspname = 'safe_run' and c.relkind in ('r', 'p')`.execute(trx);
  return new Map(
    rows.map((r) => {
      const [inserted, updated, deleted] = [Number(r.ins), Number(r.upd), Number(r.del)];
      return [
        Number(r.oid),
        { name: r.name, relfilenode: Number(r.relfilenode), writes: inserted + updated + deleted, inserted, updated, deleted },
      ];
    }),
  );
}

export function evidenceSchemaViolations(
  before: EvidenceSchemaState,
  after: EvidenceSchemaState,
  allowed: EvidenceAllowance = new Map(),
): Violation[] {
  const violations: Violation[] = [];
  const touched = (table: string, what: string): void => {
    violations.push({
      table: `safe_run.${table}`,
      rule: 'evidence-schema',
      detail: `${what} safe-run's own evidence table; a script may never touch the safe_run schema`,
    });
  };
  for (const [oid, b] of before) {
    const a = after.get(oid);
    if (!a) touched(b.name, 'dropped');
    else if (a.relfilenode !== b.relfilenode) touched(b.name, 'truncated or rewrote');
    else if (allowed.has(b.name)) {
      const allow = allowed.get(b.name)!;
      const net = a.inserted - b.inserted - (a.deleted - b.deleted);
      const updates = a.updated - b.updated;
      if (net !== allow.net || updates > allow.updates)
        touched(b.name, `wrote ${a.writes - b.writes} row(s) (the ledger recorded ${allow.net} for the script's own statements) to`);
    } else if (a.writes !== b.writes) touched(b.name, `wrote ${a.writes - b.writes} row(s) to`);
  }
  for (const [oid, a] of after) if (!before.has(oid)) touched(a.name, 'created a table in');
  return violations;
}
