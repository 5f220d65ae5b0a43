import { sql } from 'kysely';
import type { Db } from '../db/connection.js';
import { ledgerInstalled } from '../reinsert/ledger-rows.js';
import type { TableKey } from '../records/index.js';
import type { RestoreTable } from './target-tables.js';

/** Statements the change ledger recorded on a table after a backup, with rows it kept. */
export interface NewerLedgerRows {
  readonly table: TableKey;
  readonly statements: number;
  readonly rowsKept: number;
  readonly firstLedgerId: string;
  readonly lastAt: string;
}

/**
 * A backup is as old as its run; the ledger (`safe-run protect --keep-rows`) keeps each
 * deleted or changed row as it was at that moment. When it holds rows of the table from after
 * the backup, they are the newer copy, and `recover` is the better way back. Nothing to say
 * when the ledger is not installed.
 */
export async function newerLedgerRows(db: Db, tables: readonly RestoreTable[], since: string): Promise<NewerLedgerRows[]> {
  if (!(await ledgerInstalled(db))) return [];
  const found: NewerLedgerRows[] = [];
  for (const t of tables) {
    const { rows } = await sql<{ statements: string; kept: string | null; first: string | null; last: string | null }>`
      select count(*)::text as statements, sum(l.rows_kept)::text as kept, min(l.id)::text as first,
             to_char(max(l.statement_at) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') as last
        from safe_run.ledger l
       where l.table_schema = ${t.schema} and l.table_name = ${t.name}
         and l.statement_at > ${since}::timestamptz and l.rows_kept > 0`.execute(db);
    const row = rows[0];
    if (row && Number(row.statements) > 0) {
      found.push({
        table: t.key,
        statements: Number(row.statements),
        rowsKept: Number(row.kept),
        firstLedgerId: row.first!,
        lastAt: row.last!,
      });
    }
  }
  return found;
}
