import { randomBytes } from 'node:crypto';
import { sql, type RawBuilder } from 'kysely';
import type { Db } from '../db/connection.js';
import type { CatalogChange } from './catalog-diff.js';

/**
 * Who wrote a catalog row: the transaction reading it, or another. The guard asks it of the
 * rows behind what its diff names, because under READ COMMITTED the diff also shows what
 * other sessions committed meanwhile (catalog-verdict.ts).
 */

/**
 * Left out: the statistics catalogs (ANALYZE writes them, and they define nothing), and
 * pg_largeobject, whose rows are large objects' data (its metadata catalog is looked at).
 */
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

/** The reading transaction's own 64-bit id, or the next one to be assigned when it has none yet. */
const OWN_XID = sql`coalesce(pg_catalog.pg_current_xact_id_if_assigned(), pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot()))::pg_catalog.text::pg_catalog.int8`;

/**
 * Whether a visible row's `xmin` is the reading transaction's own (its subtransactions
 * included): a visible row whose writer is still in progress can only be its own, and no
 * setting hides it. A row older than the transaction is another's, committed before it.
 * pg_xact_status needs the 64-bit id: a newer xid is at most 2^31 ahead of the transaction's
 * own, so it takes that epoch, or the next one.
 */
export function writtenHere(xmin: RawBuilder<unknown>, top: RawBuilder<unknown> = sql`(select ${OWN_XID})`): RawBuilder<boolean> {
  const guess = sql`((${top} operator(pg_catalog.>>) 32 operator(pg_catalog.<<) 32) operator(pg_catalog.|) ${xmin}::pg_catalog.text::pg_catalog.int8)`;
  const widened = sql`(case when ${guess} operator(pg_catalog.<) ${top} then ${guess} operator(pg_catalog.+) 4294967296 else ${guess} end)`;
  return sql<boolean>`(case when pg_catalog.age(${xmin}) operator(pg_catalog.>) 0 then false
    else pg_catalog.pg_xact_status(${widened}::pg_catalog.text::pg_catalog.xid8) operator(pg_catalog.=) 'in progress' end)`;
}

/**
 * The scan for catalog rows the transaction wrote, prepared on the script's session before the
 * script runs (prepareOwnCatalogRows): planning its 60 branches takes about 20 ms, which the
 * run would otherwise spend after the script, with its locks held; executing the plan, 5.
 */
export interface OwnRowsScan {
  readonly catalogs: readonly string[];
  /** Its own name: a session that prepares it twice (a test's) keeps both. */
  readonly name: string;
  /** The PREPARE statement exactly as sent, which pg_prepared_statements shows while nobody replaced it. */
  readonly prepare: string;
  /** The scan itself, run as it is when the prepared one is gone or not ours. */
  readonly query: string;
}

/**
 * Prepares the scan of `catalogs` and runs it once, which plans it. Its text takes no parameter
 * (EXECUTE passes none here): the catalogs are in it as quoted identifiers, and each branch says
 * which one it counted by its position.
 */
export async function prepareOwnCatalogRows(db: Db, catalogs: readonly string[]): Promise<OwnRowsScan> {
  // The transaction's id once, in a CTE every branch joins, not three subqueries in each of
  // 60 branches: that took a third of the planning (10 against 7 ms) and half the text.
  const parts = catalogs.map(
    (name, i) => sql`
      select ${sql.raw(String(i))}::pg_catalog.int4 as i, pg_catalog.count(*) as own
        from ${sql.id('pg_catalog', name)} t, me
       where pg_catalog.age(t.xmin) operator(pg_catalog.<=) 0 and ${writtenHere(sql.ref('t.xmin'), sql.ref('me.top'))}`,
  );
  const compiled = sql`
    with me as materialized (select ${OWN_XID} as top)
    ${sql.join(parts, sql` union all `)}`.compile(db);
  if (compiled.parameters.length > 0) throw new Error('safe-run: the scan for own catalog rows must hold no parameter');
  const name = `safe_run_own_catalog_rows_${randomBytes(6).toString('hex')}`;
  const scan = { catalogs, name, query: compiled.sql, prepare: `prepare ${name} as ${compiled.sql}` };
  if (catalogs.length > 0) {
    await sql.raw(scan.prepare).execute(db);
    await sql.raw(`execute ${name}`).execute(db);
  }
  return scan;
}

/**
 * Of the newer rows of the scan's catalogs, how many the reading transaction wrote itself, by
 * catalog. The prepared statement lives in the script's session, where the script could have
 * deallocated it or prepared another under its name: it is executed only when
 * pg_prepared_statements shows it with the very text this run prepared, and otherwise the
 * scan runs as a query of its own.
 */
export async function readOwnCatalogRows(db: Db, scan: OwnRowsScan): Promise<ReadonlyMap<string, number>> {
  if (scan.catalogs.length === 0) return new Map();
  const { rows: kept } = await sql<{ ours: boolean }>`
    select true as ours from pg_catalog.pg_prepared_statements p
     where p.name operator(pg_catalog.=) ${scan.name} and p.statement operator(pg_catalog.=) ${scan.prepare}`.execute(db);
  const { rows } = await sql.raw<{ i: number; own: string }>(kept.length > 0 ? `execute ${scan.name}` : scan.query).execute(db);
  return new Map(rows.filter((r) => Number(r.own) > 0).map((r) => [scan.catalogs[r.i]!, Number(r.own)]));
}

/**
 * Catalogs whose objects the catalog state keys by their own row's oid (catalog-state-sql.ts):
 * the row a CREATE inserts. pg_authid only a superuser may read.
 */
const BY_OID = new Set([
  'pg_class',
  'pg_constraint',
  'pg_trigger',
  'pg_proc',
  'pg_rewrite',
  'pg_policy',
  'pg_namespace',
  'pg_type',
  'pg_extension',
  'pg_publication',
  'pg_default_acl',
  'pg_event_trigger',
  'pg_cast',
  'pg_operator',
  'pg_language',
  'pg_largeobject_metadata',
  'pg_foreign_data_wrapper',
  'pg_foreign_server',
  'pg_statistic_ext',
]);

/**
 * Of the objects named as created, whose own catalog row each one's is: true when this
 * transaction wrote it, false when another one did (committed, so not this run's). An object
 * whose row cannot be looked up here (a comment, a membership, a role under a plain role) is
 * left out, for the caller's coarser rule.
 */
export async function readCreatedHere(
  db: Db,
  created: readonly CatalogChange[],
  superuser: boolean,
): Promise<ReadonlyMap<string, boolean>> {
  const parts: RawBuilder<unknown>[] = [];
  const byCatalog = new Map<string, { objid: string; subid: string }[]>();
  for (const change of created) {
    const [catalog, objid, subid] = (change.key ?? '').split('/');
    if (!catalog || !objid || !subid) continue;
    byCatalog.set(catalog, [...(byCatalog.get(catalog) ?? []), { objid, subid }]);
  }
  for (const [catalog, ids] of byCatalog) {
    const oids = ids.map((i) => i.objid);
    if (BY_OID.has(catalog) || (catalog === 'pg_authid' && superuser)) {
      parts.push(sql`
        select ${catalog} operator(pg_catalog.||) '/' operator(pg_catalog.||) t.oid operator(pg_catalog.||) '/0' as key, ${writtenHere(sql.ref('t.xmin'))} as here
          from ${sql.id('pg_catalog', catalog)} t where t.oid operator(pg_catalog.=) any (${oids}::pg_catalog.oid[])`);
    } else if (catalog === 'pg_attribute') {
      const keys = ids.map((i) => `${i.objid}/${i.subid}`);
      parts.push(sql`
        select 'pg_attribute/' operator(pg_catalog.||) a.attrelid operator(pg_catalog.||) '/' operator(pg_catalog.||) a.attnum as key, ${writtenHere(sql.ref('a.xmin'))} as here
          from pg_catalog.pg_attribute a
         where a.attrelid operator(pg_catalog.=) any (${oids}::pg_catalog.oid[])
           and (a.attrelid operator(pg_catalog.||) '/' operator(pg_catalog.||) a.attnum) operator(pg_catalog.=) any (${keys}::pg_catalog.text[])`);
    }
  }
  if (parts.length === 0) return new Map();
  const { rows } = await sql<{ key: string; here: boolean }>`${sql.join(parts, sql` union all `)}`.execute(db);
  return new Map(rows.map((r) => [r.key, r.here]));
}
