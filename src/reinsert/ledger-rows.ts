import { sql } from 'kysely';
import type { Db } from '../db/connection.js';
import { parseExact } from '../db/exact-json.js';
import { keyOf } from '../db/names.js';
import { inlineRowsColumns, keptRowsSql } from '../ledger/kept-rows.js';
import type { TableKey } from '../records/index.js';
import type { JsonRow } from './types.js';

/**
 * What the change ledger kept (`safe-run protect --keep-rows`): one `safe_run.ledger` row per
 * statement on a protected table, its rows as to_jsonb, `old` before a
 * DELETE/UPDATE/TRUNCATE/DROP and `new` after an INSERT/UPDATE, inline in the ledger row or in
 * `safe_run.ledger_rows` (src/ledger/kept-rows.ts reads both). The layout is fixed between the
 * ledger and this reader (README "Change ledger").
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
  /** The seq of the `ledger.seal` entry that copied it into the evidence directory; null until sealed. */
  readonly sealedIn: number | null;
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
    sealed_in: string | null;
  }>`
    select l.id::text as id, l.xid::text as xid, l.statement_at::text as at, l.table_schema as schema, l.table_name as name,
           l.operation, l.rows_not_kept::text as not_kept,
           -- Read through to_jsonb: a ledger laid out before sealing existed has no sealed_in column.
           to_jsonb(l) ->> 'sealed_in' as sealed_in
      from safe_run.ledger l
     where ${where}
     order by l.id`.execute(db);
  const statements = rows.filter((r) => r.schema !== null && r.name !== null);
  const kept = await readKeptRows(
    db,
    statements.map((r) => r.id),
  );
  return statements.map((r) => ({
    id: r.id,
    xid: r.xid,
    at: r.at,
    table: keyOf(r.schema!, r.name!),
    schema: r.schema!,
    name: r.name!,
    operation: r.operation,
    rowsNotKept: Number(r.not_kept),
    sealedIn: r.sealed_in === null ? null : Number(r.sealed_in),
    old: kept.get(`${r.id}:old`) ?? [],
    new: kept.get(`${r.id}:new`) ?? [],
  }));
}

/** The kept rows of these statements, by `${id}:${side}`. */
async function readKeptRows(db: Db, ids: readonly string[]): Promise<Map<string, JsonRow[]>> {
  const byKey = new Map<string, JsonRow[]>();
  if (!ids.length) return byKey;
  const inline = await inlineRowsColumns(db);
  // As text, parsed here: JSON.parse of the driver would round numbers a double cannot hold (db/exact-json.ts).
  const { rows } = await sql<{ ledger_id: string; side: string; row: string }>`
    select k.ledger_id::text as ledger_id, k.side, k.row::text as row from (${keptRowsSql(sql`l.id = any(${ids.map(Number)}::bigint[])`, inline)}) k`.execute(
    db,
  );
  for (const r of rows) {
    const key = `${r.ledger_id}:${r.side}`;
    const list = byKey.get(key);
    const row = parseExact(r.row) as JsonRow;
    if (list) list.push(row);
    else byKey.set(key, [row]);
  }
  return byKey;
}
