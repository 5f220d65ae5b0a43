import { sql, type RawBuilder } from 'kysely';

/**
 * Where a statement's kept rows live, in one place for every reader (seal, recover, the
 * guarded run's count): a statement that kept few rows holds them inline, as JSON arrays in
 * its own ledger row (`old_rows`, `new_rows`: one insert per statement, the OLTP case); a
 * larger one keeps them in `safe_run.ledger_rows`, one row each, as does an install from
 * before the inline columns. `to_jsonb(l) -> 'old_rows'` is null where the column does not
 * exist yet (JSON null where it is null), so this reads both layouts, before and after `protect` brought the ledger up to date.
 *
 * `ledgerFilter` selects the statements (alias `l`), e.g. sql`l.id = any(...)`. Rows come as
 * (ledger_id, side, row).
 */
export function keptRowsSql(ledgerFilter: RawBuilder<unknown>): RawBuilder<unknown> {
  return sql`
    select l.id as ledger_id, k.side, k.row
      from safe_run.ledger l
      cross join lateral (
        select 'old' as side, e.value as row from pg_catalog.jsonb_array_elements(nullif(pg_catalog.to_jsonb(l) -> 'old_rows', 'null')) e
        union all
        select 'new', e.value from pg_catalog.jsonb_array_elements(nullif(pg_catalog.to_jsonb(l) -> 'new_rows', 'null')) e
      ) k
     where ${ledgerFilter}
    union all
    select r.ledger_id, r.side, r.row
      from safe_run.ledger_rows r
     where r.ledger_id in (select l.id from safe_run.ledger l where ${ledgerFilter})`;
}
