import { sql } from 'kysely';
import { inImportedSnapshot, type Db } from '../db/connection.js';
import { errorCode, LOCK_NOT_AVAILABLE } from '../errors.js';
import type { PgStatXactTables } from '../db/schema.js';
import type { TableKey } from '../records/index.js';
import { CATALOG_STATE_QUERY } from './catalog-state-sql.js';

/**
 * Every object of the system catalogs as the script's transaction sees it, read before and
 * after the script and compared (catalog-diff.ts). The table fingerprint of src/db/catalog.ts
 * only covers columns, constraints and indexes; this covers what a script could use to hide
 * what it did: triggers and their enabled state, functions, rules, policies, privileges,
 * owners, roles, settings, and the rest (see catalog-state-sql.ts).
 *
 * xmin alone cannot do this: a change in a savepoint carries the subtransaction's xid and a
 * drop leaves no row at all. Hence a full before/after comparison.
 */
export interface CatalogObject {
  /** `catalog/objid/subid`: stable across renames, new for a drop and re-create. */
  readonly key: string;
  readonly catalog: string;
  /** pg_identify_object's type: 'table', 'trigger', 'function', 'table column', ... */
  readonly objectType: string;
  readonly identity: string;
  /** The user table it belongs to (itself for a table), `schema.table`. */
  readonly table: TableKey | null;
  /** In this session's temp namespace, or part of a temp relation: allowed, never reported. */
  readonly temp: boolean;
  readonly facets: Readonly<Record<string, unknown>>;
  /** md5 of the facets' canonical jsonb text. */
  readonly hash: string;
}

export interface CatalogState {
  readonly objects: ReadonlyMap<string, CatalogObject>;
  /** relfilenode of every user and own-temp relation (incl. toast and indexes), by oid. */
  readonly storage: ReadonlyMap<string, number>;
}

/** Rows inserted, updated and deleted in one catalog by this transaction. */
export interface CatalogWriteCounts {
  readonly ins: number;
  readonly upd: number;
  readonly del: number;
}

export type CatalogWrites = ReadonlyMap<string, CatalogWriteCounts>;

/** Statements each reader issues (savepoint, set, the read, rollback to, release). */
export const CATALOG_STATE_STATEMENTS = 5;

/** Statistics catalogs: ANALYZE writes them, and they are not a change of anything. */
export const STATISTICS_CATALOGS: readonly string[] = ['pg_statistic', 'pg_statistic_ext_data'];

/**
 * Runs `read` with search_path = pg_catalog, pg_temp, then puts the script's own
 * search_path back. A script may have SET search_path to a schema with its own `=`
 * operator or types: with pg_catalog first and pg_temp last, the reads resolve to the
 * built-ins. SET LOCAL would outlive the read, so a savepoint rolled back afterwards undoes
 * it. The handle must be inside a transaction (it is the script's transaction).
 */
export async function withCatalogSearchPath<T>(trx: Db, read: (trx: Db) => Promise<T>): Promise<T> {
  await sql`savepoint safe_run_catalog_read`.execute(trx);
  try {
    await sql`set local search_path = pg_catalog, pg_temp`.execute(trx);
    return await read(trx);
  } finally {
    await sql`rollback to savepoint safe_run_catalog_read`.execute(trx);
    await sql`release savepoint safe_run_catalog_read`.execute(trx);
  }
}

export async function readCatalogState(trx: Db): Promise<CatalogState> {
  const { rows } = await withCatalogSearchPath(trx, (t) => CATALOG_STATE_QUERY.execute(t));
  const objects = new Map<string, CatalogObject>();
  let storage = new Map<string, number>();
  for (const row of rows) {
    if (row.catalog === 'storage') {
      storage = new Map(Object.entries((row.facets ?? {}) as Record<string, number>));
      continue;
    }
    // pg_identify_object names an object from the current catalogs, not from this read's
    // snapshot: no name means another session dropped it and committed meanwhile (a role or a
    // database, which are cluster-wide). The script's own uncommitted drops still have names
    // here, on either connection, so leaving these out hides none of its work.
    if (row.identity === null) continue;
    objects.set(row.key, {
      key: row.key,
      catalog: row.catalog,
      objectType: row.type,
      identity: row.identity,
      table: row.tbl,
      temp: row.temp,
      facets: row.facets,
      hash: row.hash,
    });
  }
  return { objects, storage };
}

/**
 * The catalog as a transaction found it: read on another connection `db`, in the snapshot the
 * transaction exported at BEGIN, so neither its own changes nor later ones by anyone show.
 * The reading takes no lock on a user table (catalog-state-sql.ts), so the transaction's own
 * ACCESS EXCLUSIVE locks cannot hold it up. Null when a lock on a system catalog itself does
 * (a superuser's LOCK TABLE pg_catalog.pg_class): the transaction waiting for this read would
 * hold that lock until the read was done, so waiting would never end.
 */
export async function readCatalogStateAt(db: Db, snapshotId: string): Promise<CatalogState | null> {
  try {
    return await inImportedSnapshot(db, snapshotId, async (trx) => {
      await sql`set local lock_timeout = '100ms'`.execute(trx);
      return readCatalogState(trx);
    });
  } catch (error) {
    if (errorCode(error) === LOCK_NOT_AVAILABLE) return null;
    throw error;
  }
}

/**
 * The transaction's own write counters on the system catalogs. They move for whatever the
 * diff cannot name: an object created and dropped again, work in a rolled-back savepoint, a
 * catalog the state does not cover. Like every pg_stat_xact view, they are read as a delta
 * (after minus before) inside one transaction (SPEC "Facts measured").
 */
export async function readCatalogWrites(trx: Db): Promise<CatalogWrites> {
  return withCatalogSearchPath(trx, readCatalogWritesHere);
}

/** readCatalogWrites for a caller that has set the catalog search path already. */
export async function readCatalogWritesHere(trx: Db): Promise<CatalogWrites> {
  const { rows } = await sql<Pick<PgStatXactTables, 'relname'> & { ins: number; upd: number; del: number }>`
    select s.relname::pg_catalog.text as relname, s.n_tup_ins as ins, s.n_tup_upd as upd, s.n_tup_del as del
      from pg_catalog.pg_stat_xact_all_tables s
     where s.schemaname = 'pg_catalog'
       and s.relname::pg_catalog.text <> all (${STATISTICS_CATALOGS as string[]}::pg_catalog.text[])`.execute(trx);
  return new Map(rows.map((r) => [r.relname, { ins: Number(r.ins), upd: Number(r.upd), del: Number(r.del) }]));
}

/** after minus before, only the catalogs that moved. */
export function catalogWritesDelta(before: CatalogWrites, after: CatalogWrites): CatalogWrites {
  const delta = new Map<string, CatalogWriteCounts>();
  for (const [catalog, a] of after) {
    const b = before.get(catalog) ?? { ins: 0, upd: 0, del: 0 };
    const d = { ins: a.ins - b.ins, upd: a.upd - b.upd, del: a.del - b.del };
    if (d.ins !== 0 || d.upd !== 0 || d.del !== 0) delta.set(catalog, d);
  }
  return delta;
}
