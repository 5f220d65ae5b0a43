import { sql } from 'kysely';
import type { Db } from '../db/connection.js';

/**
 * How many rows each system catalog holds, and how many of the visible ones the reading
 * transaction (or a newer one) wrote. The guard under a superuser relies on it to skip the
 * full catalog re-read after a script that changed only rows (guard/catalog-verdict.ts): a
 * superuser can switch the write counters off (track_counts), this cannot be. Every row a
 * transaction inserts or updates, in a committed savepoint too, carries its xid or a newer
 * subtransaction's, and a row it deletes changes a count.
 *
 * Left out: the statistics catalogs (ANALYZE writes them, and they define nothing), and
 * pg_largeobject, whose rows are large objects' data (its metadata catalog is counted).
 * Updates PostgreSQL makes in place (VACUUM's and ANALYZE's statistics in pg_class, an index's
 * validity flags) keep their xmin: none of them defines anything the guard judges.
 */
export interface CatalogCensus {
  readonly rows: ReadonlyMap<string, number>;
  /** Visible catalog rows written by the reading transaction or a newer one. */
  readonly newer: number;
  /** The catalogs holding such rows. */
  readonly newerIn: readonly string[];
}

const LEFT_OUT = ['pg_statistic', 'pg_statistic_ext_data', 'pg_largeobject'];

/** Every catalog the connected role may read (all of them, for a superuser). */
export async function listCatalogs(db: Db): Promise<string[]> {
  const { rows } = await sql<{ relname: string }>`
    select c.relname::pg_catalog.text as relname
      from pg_catalog.pg_class c
     where c.relnamespace = 'pg_catalog'::pg_catalog.regnamespace and c.relkind = 'r'
       and c.relname::pg_catalog.text <> all (${LEFT_OUT}::pg_catalog.text[])
       and pg_catalog.has_table_privilege(c.oid, 'SELECT')
     order by 1`.execute(db);
  return rows.map((r) => r.relname);
}

/**
 * One statement over `catalogs`. "Newer" is `pg_catalog.age(xmin) <= 0`: age() measures from
 * the reading transaction's xid or, if it has none yet when first asked, from the next xid
 * to be assigned, older than anything the transaction writes afterwards. A newer row may also
 * be another session's committed change (READ COMMITTED sees it); for the guard that only
 * means the full re-read, as before, and readOwnCatalogRows tells the two apart.
 */
export async function readCatalogCensus(db: Db, catalogs: readonly string[]): Promise<CatalogCensus> {
  const parts = catalogs.map(
    (name) => sql`
      select ${name}::pg_catalog.text as catalog, pg_catalog.count(*) as n,
             pg_catalog.count(*) filter (where pg_catalog.age(xmin) operator(pg_catalog.<=) 0) as newer
        from ${sql.id('pg_catalog', name)}`,
  );
  const { rows } = await sql<{ catalog: string; n: string; newer: string }>`${sql.join(parts, sql` union all `)}`.execute(db);
  return {
    rows: new Map(rows.map((r) => [r.catalog, Number(r.n)])),
    newer: rows.reduce((sum, r) => sum + Number(r.newer), 0),
    newerIn: rows.filter((r) => Number(r.newer) > 0).map((r) => r.catalog),
  };
}

/**
 * Of the newer rows of `catalogs`, how many the reading transaction wrote itself (its
 * subtransactions included), by catalog: a visible row whose writer is still in progress can
 * only be its own, and no setting hides it. pg_xact_status needs the 64-bit id: a newer xid is
 * at most 2^31 ahead of the transaction's own, so it takes that epoch, or the next one.
 */
export async function readOwnCatalogRows(db: Db, catalogs: readonly string[]): Promise<ReadonlyMap<string, number>> {
  if (catalogs.length === 0) return new Map();
  const parts = catalogs.map(
    (name) => sql`
      select ${name}::pg_catalog.text as catalog, xmin::pg_catalog.text::pg_catalog.int8 as xid
        from ${sql.id('pg_catalog', name)} where pg_catalog.age(xmin) operator(pg_catalog.<=) 0`,
  );
  const { rows } = await sql<{ catalog: string; own: string }>`
    with me as (
      select coalesce(pg_catalog.pg_current_xact_id_if_assigned(), pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot()))
             ::pg_catalog.text::pg_catalog.int8 as top
    ), newer as (${sql.join(parts, sql` union all `)}),
    widened as (
      select n.catalog, (me.top operator(pg_catalog.>>) 32 operator(pg_catalog.<<) 32) operator(pg_catalog.|) n.xid as guess, me.top
        from newer n, me
    )
    select w.catalog, pg_catalog.count(*) as own
      from widened w
     where pg_catalog.pg_xact_status((case when w.guess operator(pg_catalog.<) w.top then w.guess operator(pg_catalog.+) 4294967296
                                           else w.guess end)::pg_catalog.text::pg_catalog.xid8) operator(pg_catalog.=) 'in progress'
     group by w.catalog`.execute(db);
  return new Map(rows.map((r) => [r.catalog, Number(r.own)]));
}

/** Same catalogs, same row counts, and nothing written by the reading transaction or a newer one. */
export function censusUnchanged(before: ReadonlyMap<string, number>, after: CatalogCensus): boolean {
  if (after.newer > 0 || before.size !== after.rows.size) return false;
  return [...before].every(([catalog, n]) => after.rows.get(catalog) === n);
}
