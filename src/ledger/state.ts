import { sql } from 'kysely';
import type { Db } from '../db/connection.js';
import { keyOf } from '../db/names.js';
import type { TableKey } from '../records/index.js';
import { LEDGER_TRIGGER_NAMES } from './install.js';
import { EVENT_TRIGGERS } from './schema-sql.js';

/**
 * What protection is in place now, read from the catalogs rather than trusted from
 * `safe_run.protected`: a trigger can be disabled or dropped, a table recreated without it.
 */
export interface ProtectedTable {
  readonly key: TableKey;
  readonly schema: string;
  readonly table: string;
  readonly keepRows: boolean;
  readonly exists: boolean;
  /** Ledger triggers missing or not ENABLE ALWAYS, on the table or one of its partitions ("public.t: safe_run_ledger_delete disabled"). */
  readonly problems: readonly string[];
}

export interface LedgerState {
  readonly installed: boolean;
  readonly tables: readonly ProtectedTable[];
  /** Event triggers missing, not ENABLE ALWAYS, or installed by an older safe-run that fires on fewer commands. */
  readonly eventProblems: readonly string[];
}

const ENABLED = { A: 'enabled always', O: 'enabled (origin only)', R: 'enabled (replica only)', D: 'disabled' } as const;

export async function ledgerInstalled(db: Db): Promise<boolean> {
  // From the catalog: to_regclass() raises for a role without USAGE on safe_run.
  const { rows } = await sql<{ ok: boolean }>`
    select exists (select 1 from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
                    where n.nspname = 'safe_run' and c.relname = 'ledger') as ok`.execute(db);
  return rows[0]!.ok;
}

export async function readLedgerState(db: Db): Promise<LedgerState> {
  if (!(await ledgerInstalled(db))) return { installed: false, tables: [], eventProblems: [] };
  const { rows: tables } = await sql<{ schema: string; name: string; keep_rows: boolean; exists: boolean }>`
    select p.table_schema as schema, p.table_name as name, p.keep_rows,
           pg_catalog.to_regclass(pg_catalog.format('%I.%I', p.table_schema, p.table_name)) is not null as exists
      from safe_run.protected p order by 1, 2`.execute(db);
  const { rows: triggers } = await sql<{ root: string; rel: string; tgname: string; enabled: keyof typeof ENABLED }>`
    select p.table_schema || '.' || p.table_name as root,
           n.nspname || '.' || c.relname as rel, t.tgname::text as tgname, t.tgenabled::text as enabled
      from safe_run.protected p
      join pg_catalog.pg_class root on root.oid = pg_catalog.to_regclass(pg_catalog.format('%I.%I', p.table_schema, p.table_name))
      cross join lateral (select root.oid as relid where root.relkind = 'r'
                          union all select pt.relid from pg_catalog.pg_partition_tree(root.oid) pt where root.relkind = 'p') tree
      join pg_catalog.pg_class c on c.oid = tree.relid
      join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      left join pg_catalog.pg_trigger t on t.tgrelid = c.oid and t.tgname::text = any (${LEDGER_TRIGGER_NAMES as string[]})`.execute(db);
  const { rows: events } = await sql<{ name: string; enabled: keyof typeof ENABLED; tags: string[] | null }>`
    select evtname::text as name, evtenabled::text as enabled, evttags as tags
      from pg_catalog.pg_event_trigger where evtname like 'safe\\_run\\_ledger\\_%'`.execute(db);
  const eventProblems = EVENT_TRIGGERS.flatMap((e) => {
    const found = events.find((r) => r.name === e.name);
    if (!found) return [`event trigger ${e.name} missing: ${e.misses}`];
    if (found.enabled !== 'A') return [`event trigger ${e.name} ${ENABLED[found.enabled]}: ${e.misses}`];
    // An install from an older safe-run fires on fewer commands (before DROP OWNED, say).
    const missing = (e.tags as readonly string[]).filter((tag) => !(found.tags ?? []).includes(tag));
    return missing.length ? [`event trigger ${e.name} is from an older install, blind to ${missing.join(', ')}: ${e.misses}`] : [];
  });
  return {
    installed: true,
    eventProblems,
    tables: tables.map((t) => {
      const root = `${t.schema}.${t.name}`;
      const mine = triggers.filter((r) => r.root === root);
      const problems: string[] = [];
      for (const rel of new Set(mine.map((r) => r.rel))) {
        for (const name of LEDGER_TRIGGER_NAMES) {
          const trg = mine.find((r) => r.rel === rel && r.tgname === name);
          if (!trg) problems.push(`${rel}: ${name} missing`);
          else if (trg.enabled !== 'A') problems.push(`${rel}: ${name} ${ENABLED[trg.enabled]}`);
        }
      }
      return { key: keyOf(t.schema, t.name), schema: t.schema, table: t.name, keepRows: t.keep_rows, exists: t.exists, problems };
    }),
  };
}
