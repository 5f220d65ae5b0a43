import { sql, type RawBuilder } from 'kysely';
import type { TableCounters, TableKey, TableState } from '../records/index.js';
import type { Db } from './connection.js';
import { keyOf } from './names.js';
import { byCodeUnit } from '../text-order.js';

/**
 * Every user table as the catalog sees it, without counting rows. The guarded run reads
 * this before the script and again inside the script's transaction: a new relfilenode
 * means TRUNCATE or a rewrite, a new fingerprint means DDL (SPEC "Facts measured").
 *
 * Exactly two statements whatever the number of tables, and no BEGIN of its own, so it can
 * run on a pool, in the snapshot transaction or in the script's transaction alike.
 */
export interface CatalogTable extends Omit<TableState, 'rows' | 'rowsKind'> {
  readonly key: TableKey;
  /** reltuples, or n_live_tup for a table never analyzed; a partitioned parent sums its leaves. */
  readonly estimate: number;
  /** Leaf partitions of a partitioned table (any depth); empty for a plain table. */
  readonly leafPartitions: readonly TableKey[];
  /** Whether the connected role may SELECT from it: a table it cannot read is estimated, not counted. */
  readonly readable: boolean;
}

export type TableCatalog = Readonly<Record<TableKey, CatalogTable>>;

/** The statements readTableCatalog issues; tests hold the implementation to it. */
export const CATALOG_QUERY_COUNT = 2;

/**
 * Schemas that hold no user tables: the system's, temp and toast namespaces, and
 * safe-run's own (the chain head must not show up as drift in its own snapshots).
 */
export const userRelations = sql`
  select c.oid, n.nspname, c.relname, c.relkind, c.reltuples
    from pg_catalog.pg_class c
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
   where c.relkind in ('r', 'p')
     and n.nspname not in ('pg_catalog', 'information_schema', 'safe_run')
     and n.nspname !~ '^pg_(toast|temp)'`;

/**
 * The tables with the shape half of their fingerprints, what the guard compares before and
 * after the script: what it did to triggers, rules, policies and privileges is the catalog
 * verdict's to name (guard/catalog-verdict.ts), so the behaviour half is not read here.
 * `fingerprintsOf` limits the fingerprints to those tables (by oid): the other tables get an
 * empty one. The guard measures after the script that way, because only a table its own
 * transaction locked strongly can have had its shape changed by it, and the deparsing behind
 * a fingerprint is most of this read's cost. An empty set costs one statement, not two.
 */
export async function readTableCatalog(db: Db, options: { readonly fingerprintsOf?: ReadonlySet<number> } = {}): Promise<TableCatalog> {
  const only = options.fingerprintsOf;
  const tables = await readTableList(db);
  const shapes = only?.size === 0 ? new Map<number, string>() : await readShapes(db, only ? [...only] : null);
  return withFingerprints(tables, new Map([...shapes].map(([oid, shape]) => [oid, { shape, behaviour: '' }])));
}

/**
 * The catalog from readTableList's rows and readFingerprints' result, read apart (a snapshot
 * reads them side by side): a table missing from `fingerprints` gets empty ones.
 */
export function withFingerprints(tables: readonly TableRow[], fingerprints: ReadonlyMap<number, Fingerprints>): TableCatalog {
  const keyByOid = new Map(tables.map((t) => [t.oid, keyOf(t.nspname, t.relname)]));
  const entries = tables.map((t): CatalogTable => {
    const partitioned = t.relkind === 'p';
    const counters: TableCounters | null =
      partitioned || t.n_tup_ins === null
        ? null
        : { n_tup_ins: t.n_tup_ins, n_tup_upd: t.n_tup_upd!, n_tup_del: t.n_tup_del!, n_live_tup: t.n_live_tup! };
    return {
      key: keyOf(t.nspname, t.relname),
      schema: t.nspname,
      name: t.relname,
      oid: t.oid,
      relfilenode: t.relfilenode,
      kind: partitioned ? 'partitioned' : 'table',
      estimate: t.estimate,
      counters,
      fingerprint: fingerprints.get(t.oid)?.shape ?? '',
      behaviourFingerprint: fingerprints.get(t.oid)?.behaviour ?? '',
      // A leaf in an excluded schema has no key and is left out: it is not a user table here.
      leafPartitions: (t.leaves ?? []).flatMap((oid) => keyByOid.get(Number(oid)) ?? []).sort(),
      readable: t.readable,
    };
  });
  entries.sort((a, b) => byCodeUnit(a.key, b.key));
  return Object.fromEntries(entries.map((e) => [e.key, e]));
}

export interface TableRow {
  readonly oid: number;
  readonly nspname: string;
  readonly relname: string;
  readonly relkind: 'r' | 'p';
  readonly relfilenode: number;
  readonly estimate: number;
  readonly n_tup_ins: number | null;
  readonly n_tup_upd: number | null;
  readonly n_tup_del: number | null;
  readonly n_live_tup: number | null;
  /** Oids as text: int8[] arrays are not covered by the int8 parser. */
  readonly leaves: readonly string[] | null;
  readonly readable: boolean;
}

/** Every user table with its storage, statistics and estimate: one statement, no deparsing. */
export async function readTableList(db: Db): Promise<readonly TableRow[]> {
  // reltuples is -1 until the first ANALYZE (PostgreSQL 14+); n_live_tup is the better guess then.
  const result = await sql<TableRow>`
    with rels as (${userRelations}),
    own as (
      select r.*, s.n_tup_ins, s.n_tup_upd, s.n_tup_del, s.n_live_tup,
             case when r.reltuples < 0 then coalesce(s.n_live_tup, 0) else r.reltuples end as own_estimate
        from rels r
        left join pg_catalog.pg_stat_user_tables s on s.relid = r.oid
    )
    select o.oid::int8 as oid, o.nspname, o.relname, o.relkind,
           coalesce(pg_catalog.pg_relation_filenode(o.oid), 0)::int8 as relfilenode,
           o.n_tup_ins, o.n_tup_upd, o.n_tup_del, o.n_live_tup,
           round(case when o.relkind = 'p' then coalesce(p.estimate, 0) else o.own_estimate end)::int8 as estimate,
           p.leaves,
           pg_catalog.has_table_privilege(o.oid, 'SELECT') as readable
      from own o
      left join lateral (
        select sum(case when lc.reltuples < 0 then coalesce(ls.n_live_tup, 0) else lc.reltuples end) as estimate,
               array_agg(t.relid::int8::text) as leaves
          from pg_catalog.pg_partition_tree(o.oid) t
          join pg_catalog.pg_class lc on lc.oid = t.relid
          left join pg_catalog.pg_stat_user_tables ls on ls.relid = t.relid
         where t.isleaf and t.relid <> o.oid
      ) p on o.relkind = 'p'`.execute(db);
  return result.rows;
}

/**
 * sha256 over what DDL changes: columns (name, type with typmod, not null, default,
 * identity, generated), constraints, indexes, partition key and bound. Row changes never
 * touch it. The pg_get_*def functions read the current catalog rather than the
 * transaction's snapshot; inside one transaction that difference cannot show.
 */
export interface Fingerprints {
  readonly shape: string;
  readonly behaviour: string;
}

/** The fingerprints of `oids`, or of every user table (null): one statement, both halves. */
export async function readFingerprints(db: Db, oids: readonly number[] | null): Promise<ReadonlyMap<number, Fingerprints>> {
  const result = await sql<{ oid: number; fingerprint: string; behaviour: string }>`
    select s.oid, s.fingerprint, b.behaviour from (${shapesSql(oids)}) s join (${behavioursSql(oids)}) b on b.oid = s.oid`.execute(db);
  return new Map(result.rows.map((row) => [row.oid, { shape: row.fingerprint, behaviour: row.behaviour }]));
}

const relationsOf = (oids: readonly number[] | null) =>
  sql`select u.* from (${userRelations}) u ${oids ? sql`where u.oid = any(${oids}::pg_catalog.oid[])` : sql``}`;

/** The shape half of each fingerprint: columns, constraints, indexes, partitioning. Most of the deparsing. */
export async function readShapes(db: Db, oids: readonly number[] | null): Promise<ReadonlyMap<number, string>> {
  const result = await sql<{ oid: number; fingerprint: string }>`${shapesSql(oids)}`.execute(db);
  return new Map(result.rows.map((row) => [row.oid, row.fingerprint]));
}

function shapesSql(oids: readonly number[] | null): RawBuilder<unknown> {
  return sql`
    with rels as (${relationsOf(oids)}),
    cols as (
      select a.attrelid as oid,
             string_agg(concat_ws(' ', quote_ident(a.attname), pg_catalog.format_type(a.atttypid, a.atttypmod),
                                  case when a.attnotnull then 'not null' end,
                                  'default ' || pg_catalog.pg_get_expr(d.adbin, d.adrelid),
                                  nullif('identity ' || a.attidentity::text, 'identity '),
                                  nullif('generated ' || a.attgenerated::text, 'generated ')),
                        E'\n' order by a.attnum) as def
        from pg_catalog.pg_attribute a
        join rels r on r.oid = a.attrelid
        left join pg_catalog.pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
       where a.attnum > 0 and not a.attisdropped
       group by a.attrelid
    ),
    cons as (
      select c.conrelid as oid,
             string_agg(quote_ident(c.conname) || ' ' || pg_catalog.pg_get_constraintdef(c.oid), E'\n' order by c.conname collate "C") as def
        from pg_catalog.pg_constraint c
        join rels r on r.oid = c.conrelid
       group by c.conrelid
    ),
    -- pg_get_indexdef once per index (inside string_agg's ORDER BY it would run a second time).
    idx as (
      select d.oid, string_agg(d.def, E'\n' order by d.def collate "C") as def
        from (select i.indrelid as oid, pg_catalog.pg_get_indexdef(i.indexrelid) as def
                from pg_catalog.pg_index i
                join rels r on r.oid = i.indrelid) d
       group by d.oid
    )
    select r.oid::int8 as oid,
           encode(sha256(convert_to(concat_ws(E'\n-- ',
             'columns', cols.def, 'constraints', cons.def, 'indexes', idx.def,
             'partition', pg_catalog.pg_get_partkeydef(r.oid), pg_catalog.pg_get_expr(c.relpartbound, r.oid)), 'UTF8')), 'hex') as fingerprint
      from rels r
      join pg_catalog.pg_class c on c.oid = r.oid
      left join cols on cols.oid = r.oid
      left join cons on cons.oid = r.oid
      left join idx on idx.oid = r.oid`;
}

/**
 * The behaviour half: what decides how writes behave and who may make them, beside the
 * shape. Triggers with their enabled state (ALTER TABLE ... DISABLE TRIGGER ALL turns off
 * foreign-key cascades), rules, policies, row security, privileges and the owner.
 */
function behavioursSql(oids: readonly number[] | null): RawBuilder<unknown> {
  return sql`
    with rels as (${relationsOf(oids)}),
    trg as (
      select t.tgrelid as oid,
             string_agg(t.tgname || ' ' || t.tgenabled::text || ' ' || pg_catalog.pg_get_triggerdef(t.oid), E'\n' order by t.tgname collate "C") as def
        from pg_catalog.pg_trigger t
        join rels r on r.oid = t.tgrelid
       group by t.tgrelid
    ),
    rul as (
      select w.ev_class as oid,
             string_agg(w.rulename || ' ' || w.ev_enabled::text || ' ' || pg_catalog.pg_get_ruledef(w.oid), E'\n' order by w.rulename collate "C") as def
        from pg_catalog.pg_rewrite w
        join rels r on r.oid = w.ev_class
       group by w.ev_class
    ),
    pol as (
      select p.polrelid as oid,
             string_agg(concat_ws(' ', p.polname, p.polcmd::text, p.polpermissive::text, p.polroles::text,
                                  pg_catalog.pg_get_expr(p.polqual, p.polrelid), pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid)),
                        E'\n' order by p.polname collate "C") as def
        from pg_catalog.pg_policy p
        join rels r on r.oid = p.polrelid
       group by p.polrelid
    )
    select r.oid::int8 as oid,
           encode(sha256(convert_to(concat_ws(E'\n-- ',
             'triggers', trg.def, 'rules', rul.def, 'policies', pol.def,
             'row security', c.relrowsecurity::text || ' ' || c.relforcerowsecurity::text,
             'privileges', c.relacl::text, 'owner', pg_catalog.pg_get_userbyid(c.relowner)), 'UTF8')), 'hex') as behaviour
      from rels r
      join pg_catalog.pg_class c on c.oid = r.oid
      left join trg on trg.oid = r.oid
      left join rul on rul.oid = r.oid
      left join pol on pol.oid = r.oid`;
}

/** What a delete in the parent does to the child's rows: pg_constraint.confdeltype. */
export type ForeignKeyDeleteAction = 'no action' | 'restrict' | 'cascade' | 'set null' | 'set default';

export interface ForeignKey {
  readonly child: TableKey;
  readonly parent: TableKey;
  readonly onDelete: ForeignKeyDeleteAction;
  /** The child's referencing columns, in key order. */
  readonly childColumns: readonly string[];
}

/**
 * The one reader of foreign keys, child -> parent, for the backup scope (which deletes reach
 * which tables) and the restore order (parents before children). One statement; a foreign key on
 * a partitioned table has a clone per partition in pg_constraint, so partitions appear on both sides.
 */
export async function readForeignKeys(db: Db): Promise<readonly ForeignKey[]> {
  const result = await sql<ForeignKey>`
    select cn.nspname || '.' || c.relname as child, pn.nspname || '.' || p.relname as parent,
           case k.confdeltype when 'c' then 'cascade' when 'n' then 'set null' when 'd' then 'set default'
                              when 'r' then 'restrict' else 'no action' end as "onDelete",
           (select pg_catalog.array_agg(a.attname::text order by c2.n)
              from pg_catalog.unnest(k.conkey) with ordinality c2(attnum, n)
              join pg_catalog.pg_attribute a on a.attrelid = k.conrelid and a.attnum = c2.attnum) as "childColumns"
      from pg_catalog.pg_constraint k
      join pg_catalog.pg_class c on c.oid = k.conrelid
      join pg_catalog.pg_namespace cn on cn.oid = c.relnamespace
      join pg_catalog.pg_class p on p.oid = k.confrelid
      join pg_catalog.pg_namespace pn on pn.oid = p.relnamespace
     where k.contype = 'f'`.execute(db);
  return result.rows;
}
