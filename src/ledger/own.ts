import { sql } from 'kysely';
import type { Db } from '../db/connection.js';
import { keyOf } from '../db/names.js';
import type { LedgerCrossCheck, TableChange, TableKey } from '../records/index.js';

/**
 * A guarded run's own statements, as the ledger triggers recorded them inside its
 * transaction. Read through safe_run.ledger_own_statements(), which returns the caller's own
 * transaction's rows only, since the script's role may not read safe_run itself.
 */
export interface OwnLedgerRow {
  readonly table: TableKey | null;
  readonly operation: string;
  readonly statements: number;
  readonly rowCount: number;
  readonly keptRows: number;
  /** Of those, the rows written to safe_run.ledger_rows (the rest are inline in the ledger rows). */
  readonly ledgerRows: number;
}

/** Null: no ledger in this database. */
export async function readOwnLedger(trx: Db): Promise<OwnLedgerRow[] | null> {
  // From the catalog, not to_regprocedure(): that raises "permission denied for schema" for a
  // script role without USAGE on safe_run (the anchor's schema), and would abort the run.
  const { rows: exists } = await sql<{ ok: boolean }>`
    select exists (select 1 from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
                    where n.nspname = 'safe_run' and p.proname = 'ledger_own_statements') as ok`.execute(trx);
  if (!exists[0]?.ok) return null;
  const { rows } = await sql<{
    table_schema: string | null;
    table_name: string | null;
    operation: string;
    statements: number;
    row_count: number;
    kept_rows: number;
    ledger_rows?: number;
  }>`select * from safe_run.ledger_own_statements()`.execute(trx);
  return rows.map((r) => ({
    table: r.table_schema !== null && r.table_name !== null ? keyOf(r.table_schema, r.table_name) : null,
    operation: r.operation,
    statements: Number(r.statements),
    rowCount: Number(r.row_count),
    keptRows: Number(r.kept_rows),
    // An install that `protect` has not brought up to date keeps every row in ledger_rows.
    ledgerRows: Number(r.ledger_rows ?? r.kept_rows),
  }));
}

/**
 * The rows the ledger may have written to its own tables for these statements: the guard
 * allows exactly these writes to safe_run and no other. A DROP of a protected table
 * confirms its pending copy with one UPDATE per statement.
 */
export function ledgerAllowance(
  own: readonly OwnLedgerRow[] | null,
): ReadonlyMap<string, { readonly net: number; readonly updates: number }> {
  if (!own) return new Map();
  const sum = (f: (r: OwnLedgerRow) => number): number => own.reduce((n, r) => n + f(r), 0);
  return new Map([
    ['ledger', { net: sum((r) => r.statements), updates: sum((r) => (r.operation === 'DROP' ? r.statements : 0)) }],
    ['ledger_rows', { net: sum((r) => r.ledgerRows), updates: 0 }],
  ]);
}

/** The protected tables, read on the runner's own connection; empty when the runner may not read them. */
export async function readProtectedKeys(db: Db): Promise<TableKey[]> {
  try {
    const { rows } = await sql<{ schema: string; name: string }>`
      select table_schema as schema, table_name as name from safe_run.protected`.execute(db);
    return rows.map((r) => keyOf(r.schema, r.name));
  } catch {
    return [];
  }
}

/** The operations that write rows; DDL, DROP, RENAME and the ledger's switches do not. */
const WRITES = new Set(['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']);

/**
 * Two witnesses of the same writes: the statistics counters the guard measured, and the
 * ledger's statements. For each protected table (with its partitions) they must agree;
 * work undone by a rolled-back savepoint is counted by the counters only, and shows here.
 */
export function ledgerCrossCheck(
  own: readonly OwnLedgerRow[],
  changes: Readonly<Record<TableKey, TableChange>>,
  protectedKeys: readonly TableKey[],
  partitionsOf: (key: TableKey) => readonly TableKey[],
): LedgerCrossCheck {
  const disagreements: { table: TableKey; detail: string }[] = [];
  const tables = new Set([...protectedKeys, ...own.flatMap((r) => (r.table && WRITES.has(r.operation) ? [r.table] : []))]);
  for (const table of tables) {
    const related = new Set([table, ...partitionsOf(table)]);
    const rows = (op: string): number =>
      own.filter((r) => r.table && related.has(r.table) && r.operation === op).reduce((n, r) => n + r.rowCount, 0);
    const measured = changes[table] ?? { inserted: 0, updated: 0, deleted: 0, truncated: false };
    const ledger = { inserted: rows('INSERT'), updated: rows('UPDATE'), deleted: rows('DELETE'), truncated: rows('TRUNCATE') > 0 };
    const differ: string[] = [];
    if (ledger.inserted !== measured.inserted) differ.push(`inserted ${measured.inserted} measured, ${ledger.inserted} in the ledger`);
    if (ledger.updated !== measured.updated) differ.push(`updated ${measured.updated} measured, ${ledger.updated} in the ledger`);
    // A TRUNCATE resets the transaction's delete counter: only the TRUNCATE itself is compared then.
    if (!measured.truncated && ledger.deleted !== measured.deleted)
      differ.push(`deleted ${measured.deleted} measured, ${ledger.deleted} in the ledger`);
    if (ledger.truncated !== measured.truncated)
      differ.push(`TRUNCATE ${measured.truncated ? 'measured' : 'not measured'}, ${ledger.truncated ? '' : 'not '}in the ledger`);
    if (differ.length) disagreements.push({ table, detail: differ.join('; ') });
  }
  return {
    statements: own.reduce((n, r) => n + r.statements, 0),
    keptRows: own.reduce((n, r) => n + r.keptRows, 0),
    disagreements,
  };
}
