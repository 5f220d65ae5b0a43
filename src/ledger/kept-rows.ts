import { sql, type RawBuilder } from 'kysely';
import type { Db } from '../db/connection.js';

/**
 * Where a statement's kept rows live, in one place for every reader (seal, recover, the
 * guarded run's count): a statement that kept few rows holds them inline, as JSON arrays in
 * its own ledger row (`old_rows`, `new_rows`: one insert per statement, the OLTP case); a
 * larger one keeps them in `safe_run.ledger_rows`, one row each, as does an install from
 * before the inline columns.
 *
 * `ledgerFilter` selects the statements (alias `l`), e.g. sql`l.id = any(...)`. Rows come as
 * (ledger_id, side, row). `inline` says whether the ledger has the inline columns
 * (inlineRowsColumns): naming them directly is what keeps a seal of 40,000 statements at
 * 150 ms; reading them through `to_jsonb(l)`, which works on both layouts, took 2.5 s.
 */
export function keptRowsSql(ledgerFilter: RawBuilder<unknown>, inline: boolean): RawBuilder<unknown> {
  const fromLedgerRows = sql`
    select r.ledger_id, r.side, r.row
      from safe_run.ledger_rows r
     where r.ledger_id in (select l.id from safe_run.ledger l where ${ledgerFilter})`;
  if (!inline) return fromLedgerRows;
  return sql`
    select l.id as ledger_id, k.side, k.row
      from safe_run.ledger l
      cross join lateral (
        select 'old' as side, e.value as row from pg_catalog.jsonb_array_elements(l.old_rows) e
        union all
        select 'new', e.value from pg_catalog.jsonb_array_elements(l.new_rows) e
      ) k
     where ${ledgerFilter}
    union all ${fromLedgerRows}`;
}

/** Whether this database's ledger has the inline kept-rows columns (`protect` adds them to an older install). */
export async function inlineRowsColumns(db: Db): Promise<boolean> {
  const { rows } = await sql<{ inline: boolean }>`
    select pg_catalog.count(*) = 2 as inline from pg_catalog.pg_attribute a
     where a.attrelid = 'safe_run.ledger'::pg_catalog.regclass and a.attname in ('old_rows', 'new_rows') and not a.attisdropped`.execute(
    db,
  );
  return rows[0]?.inline ?? false;
}
