import { sql } from 'kysely';
import type { OnSkipped } from '../audit/read.js';
import type { Db } from '../db/connection.js';
import type { LedgerStatement } from '../records/index.js';
import { readSealedCopies } from './findings.js';
import { keptRowsSql } from './kept-rows.js';
import { readStatements } from './seal.js';
import type { TableName } from './install.js';
import { ledgerInstalled } from './state.js';

/**
 * Every ledger statement blame can know of: the sealed copies in the evidence directory
 * (which outlive a dropped database) and the live rows not sealed yet. A recreated database
 * starts its ids again, so statements are told apart by database oid and id.
 */
export interface KnownStatement extends LedgerStatement {
  readonly databaseOid: number;
  /** The ledger.seal entry that holds it; null for a live row not sealed yet. */
  readonly sealedIn: number | null;
}

export interface LedgerView {
  readonly statements: readonly KnownStatement[];
  /** False when the live ledger could not be read (no database, a recreated one, no ledger). */
  readonly live: boolean;
  readonly lastSeal: { readonly seq: number; readonly ts: string; readonly databaseOid: number } | null;
}

/**
 * `about`: only what blame of that table reads (its statements, and every DELETE and
 * TRUNCATE for the cascades); without it, every statement.
 */
export async function readLedgerView(
  db: Db | null,
  evidenceDir: string,
  database: { readonly key: string; readonly oid: number | null },
  onSkipped: OnSkipped,
  about?: TableName,
): Promise<LedgerView> {
  const copies = await readSealedCopies(evidenceDir, { key: database.key }, onSkipped);
  const wanted = (s: LedgerStatement): boolean =>
    !about || (s.table_schema === about.schema && s.table_name === about.table) || s.operation === 'DELETE' || s.operation === 'TRUNCATE';
  const byKey = new Map<string, KnownStatement>();
  for (const c of copies)
    for (const l of c.lines)
      if (wanted(l.statement))
        byKey.set(`${c.body.databaseOid}:${l.statement.id}`, { ...l.statement, databaseOid: c.body.databaseOid, sealedIn: c.seq });
  let live = false;
  if (db && database.oid !== null && (await ledgerInstalled(db))) {
    live = true;
    const rows = await db.transaction().execute((trx) => readStatements(trx, 'unsealed-visible', about));
    for (const s of rows) {
      const k = `${database.oid}:${s.id}`;
      if (!byKey.has(k)) byKey.set(k, { ...s, databaseOid: database.oid, sealedIn: null });
    }
  }
  const last = copies[copies.length - 1];
  // Times parsed once: a comparator that parses (or localeCompare) costs per comparison.
  const timed = [...byKey.values()].map((s) => ({ s, at: Date.parse(s.statement_at) }));
  return {
    statements: timed.sort((a, b) => a.at - b.at || a.s.id - b.s.id).map((t) => t.s),
    live,
    lastSeal: last ? { seq: last.seq, ts: last.ts, databaseOid: last.body.databaseOid } : null,
  };
}

/** Kept rows of one statement still in the live database (recover reads them; blame only points there). */
export async function keptRowCount(db: Db, ledgerId: number): Promise<number> {
  const { rows } = await sql<{
    n: number;
  }>`select pg_catalog.count(*)::int8 as n from (${keptRowsSql(sql`l.id = ${ledgerId}`)}) k`.execute(db);
  return Number(rows[0]!.n);
}
