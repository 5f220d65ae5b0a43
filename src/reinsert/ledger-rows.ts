import { sql } from 'kysely';
import type { Db } from '../db/connection.js';
import { keyOf } from '../db/names.js';
import type { TableKey } from '../records/index.js';
import type { JsonRow } from './types.js';

/**
 * What the change ledger kept (`safe-run protect --keep-rows`): one `safe_run.ledger` row per
 * statement on a protected table, its rows in `safe_run.ledger_rows` as to_jsonb, `old` before
 * a DELETE/UPDATE/TRUNCATE/DROP and `new` after an INSERT/UPDATE. The layout is fixed between
 * the ledger and this reader (README "Change ledger").
 */
export interface LedgerStatement {
  readonly id: string;
  readonly xid: string;
  readonly at: string;
  readonly table: TableKey;
  readonly schema: string;
  readonly name: string;
  readonly operation: string;
  readonly rowsNotKept: number;
  readonly old: readonly JsonRow[];
  readonly new: readonly JsonRow[];
}

export async function ledgerInstalled(db: Db): Promise<boolean> {
  const { rows } = await sql<{ ok: boolean }>`
    select to_regclass('safe_run.ledger') is not null and to_regclass('safe_run.ledger_rows') is not null as ok`.execute(db);
  return rows[0]?.ok === true;
}

export type LedgerFilter =
  | { readonly by: 'xid'; readonly xid: string }
  | { readonly by: 'ids'; readonly ids: readonly string[] }
  | { readonly by: 'table'; readonly schema: string; readonly name: string; readonly since: string; readonly until: string | null };

/** The statements (with their kept rows) that match, oldest first. */
export async function readLedger(db: Db, filter: LedgerFilter): Promise<LedgerStatement[]> {
  const where =
    filter.by === 'xid'
      ? sql`l.xid = ${filter.xid}::xid8`
      : filter.by === 'ids'
        ? sql`l.id = any(${filter.ids.map(Number)}::bigint[])`
        : sql`l.table_schema = ${filter.schema} and l.table_name = ${filter.name}
              and l.statement_at >= ${filter.since}::timestamptz
              and (${filter.until}::timestamptz is null or l.statement_at <= ${filter.until}::timestamptz)`;
  const { rows } = await sql<{
    id: string;
    xid: string;
    at: string;
    schema: string | null;
    name: string | null;
    operation: string;
    not_kept: string;
    old: JsonRow[] | null;
    new: JsonRow[] | null;
  }>`
    select l.id::text as id, l.xid::text as xid, l.statement_at::text as at, l.table_schema as schema, l.table_name as name,
           l.operation, l.rows_not_kept::text as not_kept,
           (select jsonb_agg(r.row) from safe_run.ledger_rows r where r.ledger_id = l.id and r.side = 'old') as old,
           (select jsonb_agg(r.row) from safe_run.ledger_rows r where r.ledger_id = l.id and r.side = 'new') as new
      from safe_run.ledger l
     where ${where}
     order by l.id`.execute(db);
  return rows
    .filter((r) => r.schema !== null && r.name !== null)
    .map((r) => ({
      id: r.id,
      xid: r.xid,
      at: r.at,
      table: keyOf(r.schema!, r.name!),
      schema: r.schema!,
      name: r.name!,
      operation: r.operation,
      rowsNotKept: Number(r.not_kept),
      old: r.old ?? [],
      new: r.new ?? [],
    }));
}
