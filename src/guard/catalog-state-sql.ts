import { sql } from 'kysely';

/**
 * One row per catalog object: its key (catalog/objid/subid), its identity, the user table it
 * belongs to, whether it lives in this session's temp namespace, and its definition as a
 * small jsonb of "facets" (hashed in the same statement). One statement, whatever the
 * database size: no per-object round trips.
 *
 * Objects created by initdb (oid < 16384, FirstNormalObjectId) are too many to list one by
 * one on every run; each catalog's built-ins are folded into one digest of owners and
 * privileges instead, so a GRANT on a pg_catalog function still shows. What only a superuser
 * can change there (a built-in's body, its comment) is left to the write counters.
 * (It is more than the cost: md5 over every built-in body took 20 ms of the read.)
 *
 * Left out on purpose: statistics (pg_statistic*, reltuples, relpages, relallvisible,
 * relfrozenxid, relminmxid) and storage (relfilenode, judged elsewhere; it comes back only
 * in the separate `storage` row). Other sessions' temp namespaces are skipped entirely.
 * pg_authid and user-mapping options are never read: any role must be able to run this.
 *
 * It takes no lock on any user table, so another connection can read the catalog as the
 * script's transaction found it at BEGIN while that transaction holds ACCESS EXCLUSIVE locks
 * (catalog-changes.ts: readCatalogStateAt). PostgreSQL's deparsers open the table to print an
 * expression (pg_get_expr, pg_get_viewdef, pg_get_ruledef, a CHECK's pg_get_constraintdef, a
 * trigger's WHEN, pg_get_partkeydef, pg_get_statisticsobjdef), so those definitions are kept
 * as an md5 of the stored node tree instead: the same row gives the same text, and a change
 * is named, not printed. Deparsers that only look names up (a foreign key, a trigger without
 * WHEN) stay, for the detail they give.
 *
 * The caller runs it with search_path = pg_catalog, pg_temp (see withCatalogSearchPath), so
 * no operator or type can be shadowed; functions and catalogs are qualified all the same.
 */
export const CATALOG_STATE_QUERY = sql<{
  catalog: string;
  key: string;
  type: string;
  /** Null when the object is gone from the current catalogs (readCatalogState). */
  identity: string | null;
  tbl: string | null;
  temp: boolean;
  facets: Record<string, unknown>;
  hash: string;
}>`
with ns as (
  select n.oid, n.nspname, n.nspname ~ '^pg_(toast_)?temp_' as is_temp,
         n.oid = pg_catalog.pg_my_temp_schema() as own_temp
    from pg_catalog.pg_namespace n
),
rel as (
  select c.*, ns.nspname, ns.own_temp as temp,
         case when c.relkind in ('r', 'p') then ns.nspname || '.' || c.relname end as tbl
    from pg_catalog.pg_class c
    join ns on ns.oid = c.relnamespace
   where c.oid >= 16384 and (not ns.is_temp or ns.own_temp) and ns.nspname <> 'pg_toast'
),
relations as (
  select 'pg_class' as catalog, 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid as classid, r.oid as objid,
         0 as subid, coalesce(r.tbl, it.tbl) as tbl, r.temp,
         pg_catalog.jsonb_build_object(
           'kind', r.relkind, 'owner', pg_catalog.pg_get_userbyid(r.relowner),
           'acl', coalesce(r.relacl, pg_catalog.acldefault((case r.relkind when 'S' then 's' else 'r' end)::pg_catalog."char", r.relowner))::pg_catalog.text[],
           'persistence', r.relpersistence, 'rowSecurity', r.relrowsecurity, 'forceRowSecurity', r.relforcerowsecurity,
           'options', r.reloptions, 'replicaIdentity', r.relreplident, 'tablespace', r.reltablespace,
           'accessMethod', (select am.amname from pg_catalog.pg_am am where am.oid = r.relam),
           'partitionKey', (select pg_catalog.md5(pg_catalog.concat_ws('|', pt.partstrat, pt.partattrs, pt.partclass,
                              pt.partcollation, pt.partexprs)) from pg_catalog.pg_partitioned_table pt where pt.partrelid = r.oid),
           'partitionBound', pg_catalog.md5(r.relpartbound::pg_catalog.text),
           'inherits', (select pg_catalog.array_agg(i.inhparent::pg_catalog.regclass::pg_catalog.text order by i.inhseqno)
                          from pg_catalog.pg_inherits i where i.inhrelid = r.oid),
           'view', case when r.relkind in ('v', 'm') then (select pg_catalog.md5(w.ev_action::pg_catalog.text) from pg_catalog.pg_rewrite w
                                                             where w.ev_class = r.oid and w.rulename = '_RETURN') end,
           -- The raw pg_index columns, not pg_get_indexdef: that deparse locks the table and cost 40 us an index.
           'index', case when x.indexrelid is not null then pg_catalog.md5(pg_catalog.concat_ws('|', x.indrelid, x.indkey,
                      x.indclass, x.indcollation, x.indoption, x.indexprs, x.indpred, x.indisunique, x.indisprimary,
                      x.indisexclusion, x.indimmediate)) end,
           'indexFlags', case when x.indexrelid is not null then pg_catalog.jsonb_build_object(
                           'valid', x.indisvalid, 'clustered', x.indisclustered, 'replicaIdentity', x.indisreplident) end,
           'sequence', pg_catalog.to_jsonb(q) - 'seqrelid',
           'foreign', (select pg_catalog.jsonb_build_object('server', f.ftserver, 'options', f.ftoptions)
                         from pg_catalog.pg_foreign_table f where f.ftrelid = r.oid),
           'ofType', nullif(r.reloftype, 0)) as facets
    from rel r
    left join pg_catalog.pg_index x on x.indexrelid = r.oid
    -- A join, not a subquery per relation: that one took 28 ms on 200 tables.
    left join pg_catalog.pg_sequence q on q.seqrelid = r.oid
    left join rel it on it.oid = x.indrelid
),
columns as (
  select 'pg_attribute', 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid, a.attrelid, a.attnum::pg_catalog.int4,
         r.tbl, r.temp,
         pg_catalog.jsonb_build_object(
           'name', a.attname, 'type', pg_catalog.format_type(a.atttypid, a.atttypmod), 'notNull', a.attnotnull,
           'default', pg_catalog.md5(d.adbin::pg_catalog.text), 'identity', nullif(a.attidentity::pg_catalog.text, ''),
           'generated', nullif(a.attgenerated::pg_catalog.text, ''), 'collation', nullif(a.attcollation, 0),
           'acl', a.attacl::pg_catalog.text[], 'options', a.attoptions, 'storage', a.attstorage,
           'compression', nullif(a.attcompression::pg_catalog.text, ''), 'statisticsTarget', a.attstattarget)
    from pg_catalog.pg_attribute a
    join rel r on r.oid = a.attrelid and r.relkind not in ('i', 'I', 'S')
    left join pg_catalog.pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
   where a.attnum > 0 and not a.attisdropped
),
constraints as (
  select 'pg_constraint', 'pg_catalog.pg_constraint'::pg_catalog.regclass::pg_catalog.oid, c.oid, 0, r.tbl,
         coalesce(r.temp, ns.own_temp),
         pg_catalog.jsonb_build_object(
           -- A CHECK or EXCLUDE constraint's text is deparsed against its table, which locks it.
           'definition', case when c.conrelid <> 0 and c.contype in ('c', 'x')
                              then pg_catalog.md5(pg_catalog.concat_ws('|', c.contype, c.conkey, c.conexclop, c.conindid, c.conbin))
                              else pg_catalog.pg_get_constraintdef(c.oid) end,
           'validated', c.convalidated,
                                       'deferrable', c.condeferrable, 'deferred', c.condeferred)
    from pg_catalog.pg_constraint c
    join ns on ns.oid = c.connamespace
    left join rel r on r.oid = c.conrelid
   where c.oid >= 16384 and (not ns.is_temp or ns.own_temp)
),
triggers as (
  select 'pg_trigger', 'pg_catalog.pg_trigger'::pg_catalog.regclass::pg_catalog.oid, t.oid, 0, r.tbl, r.temp,
         pg_catalog.jsonb_build_object(
           'enabled', t.tgenabled, 'internal', t.tgisinternal,
           -- Deparsing a WHEN clause locks the table.
           'definition', case when t.tgqual is null then pg_catalog.pg_get_triggerdef(t.oid)
                              else pg_catalog.md5(pg_catalog.concat_ws('|', t.tgname, t.tgfoid, t.tgtype, t.tgargs, t.tgattr,
                                     t.tgqual, t.tgdeferrable, t.tginitdeferred, t.tgoldtable, t.tgnewtable)) end,
           'enforces', (select c.conname || ' on ' || c.conrelid::pg_catalog.regclass::pg_catalog.text
                          from pg_catalog.pg_constraint c where c.oid = t.tgconstraint))
    from pg_catalog.pg_trigger t
    join rel r on r.oid = t.tgrelid
),
functions as (
  select 'pg_proc', 'pg_catalog.pg_proc'::pg_catalog.regclass::pg_catalog.oid, p.oid, 0, null::pg_catalog.text, ns.own_temp,
         pg_catalog.jsonb_build_object(
           'kind', p.prokind, 'owner', pg_catalog.pg_get_userbyid(p.proowner),
           'acl', coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))::pg_catalog.text[],
           'securityDefiner', p.prosecdef, 'language', (select l.lanname from pg_catalog.pg_language l where l.oid = p.prolang),
           'body', pg_catalog.md5(p.prosrc), 'binary', p.probin, 'config', p.proconfig, 'volatility', p.provolatile,
           'strict', p.proisstrict, 'leakproof', p.proleakproof, 'parallel', p.proparallel,
           'returns', pg_catalog.pg_get_function_result(p.oid))
    from pg_catalog.pg_proc p
    join ns on ns.oid = p.pronamespace
   where p.oid >= 16384 and (not ns.is_temp or ns.own_temp)
),
rules as (
  select 'pg_rewrite', 'pg_catalog.pg_rewrite'::pg_catalog.regclass::pg_catalog.oid, w.oid, 0, r.tbl, r.temp,
         pg_catalog.jsonb_build_object('definition', pg_catalog.md5(pg_catalog.concat_ws('|', w.ev_type, w.is_instead, w.ev_qual, w.ev_action)),
           'enabled', w.ev_enabled)
    from pg_catalog.pg_rewrite w
    join rel r on r.oid = w.ev_class
   where w.rulename <> '_RETURN'
),
policies as (
  select 'pg_policy', 'pg_catalog.pg_policy'::pg_catalog.regclass::pg_catalog.oid, p.oid, 0, r.tbl, r.temp,
         pg_catalog.jsonb_build_object(
           'command', p.polcmd, 'permissive', p.polpermissive,
           'roles', (select pg_catalog.array_agg(case when o = 0 then 'PUBLIC' else pg_catalog.pg_get_userbyid(o)::pg_catalog.text end
                                                 order by o) from pg_catalog.unnest(p.polroles) o),
           'using', pg_catalog.md5(p.polqual::pg_catalog.text), 'withCheck', pg_catalog.md5(p.polwithcheck::pg_catalog.text))
    from pg_catalog.pg_policy p
    join rel r on r.oid = p.polrelid
),
namespaces as (
  select 'pg_namespace', 'pg_catalog.pg_namespace'::pg_catalog.regclass::pg_catalog.oid, n.oid, 0, null, false,
         pg_catalog.jsonb_build_object('owner', pg_catalog.pg_get_userbyid(n.nspowner),
           'acl', coalesce(n.nspacl, pg_catalog.acldefault('n', n.nspowner))::pg_catalog.text[])
    from pg_catalog.pg_namespace n
   where n.nspname !~ '^pg_(toast_)?temp_'
),
types as (
  select 'pg_type', 'pg_catalog.pg_type'::pg_catalog.regclass::pg_catalog.oid, t.oid, 0, null, ns.own_temp,
         pg_catalog.jsonb_build_object(
           'kind', t.typtype, 'owner', pg_catalog.pg_get_userbyid(t.typowner),
           'acl', coalesce(t.typacl, pg_catalog.acldefault('T', t.typowner))::pg_catalog.text[],
           'notNull', t.typnotnull, 'default', t.typdefault,
           'base', case when t.typtype = 'd' then pg_catalog.format_type(t.typbasetype, t.typtypmod) end,
           'labels', (select pg_catalog.array_agg(e.enumlabel order by e.enumsortorder)
                        from pg_catalog.pg_enum e where e.enumtypid = t.oid))
    from pg_catalog.pg_type t
    join ns on ns.oid = t.typnamespace
   where t.oid >= 16384 and (not ns.is_temp or ns.own_temp) and t.typrelid = 0
     and not exists (select from pg_catalog.pg_type e where e.typarray = t.oid)
),
roles as (
  select 'pg_authid', 'pg_catalog.pg_authid'::pg_catalog.regclass::pg_catalog.oid, a.oid, 0, null, false,
         pg_catalog.jsonb_build_object(
           'superuser', a.rolsuper, 'inherit', a.rolinherit, 'createRole', a.rolcreaterole, 'createDb', a.rolcreatedb,
           'login', a.rolcanlogin, 'replication', a.rolreplication, 'bypassRls', a.rolbypassrls,
           'connectionLimit', a.rolconnlimit, 'validUntil', a.rolvaliduntil)
    from pg_catalog.pg_roles a
),
databases as (
  select 'pg_database', 'pg_catalog.pg_database'::pg_catalog.regclass::pg_catalog.oid, d.oid, 0, null, false,
         pg_catalog.jsonb_build_object(
           'owner', pg_catalog.pg_get_userbyid(d.datdba),
           'acl', coalesce(d.datacl, pg_catalog.acldefault('d', d.datdba))::pg_catalog.text[],
           'connectionLimit', d.datconnlimit, 'allowConnections', d.datallowconn, 'template', d.datistemplate,
           'tablespace', d.dattablespace)
    from pg_catalog.pg_database d
   where d.datname = pg_catalog.current_database()
),
others as (
  select 'pg_extension', 'pg_catalog.pg_extension'::pg_catalog.regclass::pg_catalog.oid, x.oid, 0, null::pg_catalog.text, false,
         pg_catalog.jsonb_build_object('version', x.extversion, 'owner', pg_catalog.pg_get_userbyid(x.extowner),
           'schema', x.extnamespace, 'config', x.extconfig::pg_catalog.regclass[]::pg_catalog.text[])
    from pg_catalog.pg_extension x
  union all
  select 'pg_publication', 'pg_catalog.pg_publication'::pg_catalog.regclass::pg_catalog.oid, p.oid, 0, null, false,
         (pg_catalog.to_jsonb(p) - 'oid' - 'pubname') || pg_catalog.jsonb_build_object(
           'tables', (select pg_catalog.array_agg(pr.prrelid::pg_catalog.regclass::pg_catalog.text
                                                  || coalesce(' where ' || pg_catalog.md5(pr.prqual::pg_catalog.text), '')
                                                  order by 1)
                        from pg_catalog.pg_publication_rel pr where pr.prpubid = p.oid),
           'schemas', (select pg_catalog.array_agg(pn.pnnspid::pg_catalog.regnamespace::pg_catalog.text order by 1)
                         from pg_catalog.pg_publication_namespace pn where pn.pnpubid = p.oid))
    from pg_catalog.pg_publication p
  union all
  select 'pg_default_acl', 'pg_catalog.pg_default_acl'::pg_catalog.regclass::pg_catalog.oid, a.oid, 0, null, false,
         pg_catalog.jsonb_build_object('acl', a.defaclacl::pg_catalog.text[])
    from pg_catalog.pg_default_acl a
  union all
  select 'pg_event_trigger', 'pg_catalog.pg_event_trigger'::pg_catalog.regclass::pg_catalog.oid, e.oid, 0, null, false,
         pg_catalog.jsonb_build_object('event', e.evtevent, 'enabled', e.evtenabled, 'tags', e.evttags,
           'owner', pg_catalog.pg_get_userbyid(e.evtowner), 'function', e.evtfoid::pg_catalog.regprocedure::pg_catalog.text)
    from pg_catalog.pg_event_trigger e
  union all
  select 'pg_cast', 'pg_catalog.pg_cast'::pg_catalog.regclass::pg_catalog.oid, c.oid, 0, null, false,
         pg_catalog.jsonb_build_object('function', nullif(c.castfunc, 0)::pg_catalog.regprocedure::pg_catalog.text,
           'context', c.castcontext, 'method', c.castmethod)
    from pg_catalog.pg_cast c where c.oid >= 16384
  union all
  select 'pg_operator', 'pg_catalog.pg_operator'::pg_catalog.regclass::pg_catalog.oid, o.oid, 0, null, ns.own_temp,
         pg_catalog.jsonb_build_object('function', o.oprcode::pg_catalog.regprocedure::pg_catalog.text,
           'owner', pg_catalog.pg_get_userbyid(o.oprowner))
    from pg_catalog.pg_operator o join ns on ns.oid = o.oprnamespace
   where o.oid >= 16384 and (not ns.is_temp or ns.own_temp)
  union all
  select 'pg_language', 'pg_catalog.pg_language'::pg_catalog.regclass::pg_catalog.oid, l.oid, 0, null, false,
         pg_catalog.jsonb_build_object('owner', pg_catalog.pg_get_userbyid(l.lanowner), 'trusted', l.lanpltrusted,
           'acl', coalesce(l.lanacl, pg_catalog.acldefault('l', l.lanowner))::pg_catalog.text[])
    from pg_catalog.pg_language l
  union all
  select 'pg_largeobject_metadata', 'pg_catalog.pg_largeobject'::pg_catalog.regclass::pg_catalog.oid, m.oid, 0, null, false,
         pg_catalog.jsonb_build_object('owner', pg_catalog.pg_get_userbyid(m.lomowner),
           'acl', coalesce(m.lomacl, pg_catalog.acldefault('L', m.lomowner))::pg_catalog.text[])
    from pg_catalog.pg_largeobject_metadata m
  union all
  select 'pg_foreign_data_wrapper', 'pg_catalog.pg_foreign_data_wrapper'::pg_catalog.regclass::pg_catalog.oid, w.oid, 0,
         null, false,
         pg_catalog.jsonb_build_object('owner', pg_catalog.pg_get_userbyid(w.fdwowner), 'options', w.fdwoptions,
           'acl', coalesce(w.fdwacl, pg_catalog.acldefault('F', w.fdwowner))::pg_catalog.text[])
    from pg_catalog.pg_foreign_data_wrapper w
  union all
  select 'pg_foreign_server', 'pg_catalog.pg_foreign_server'::pg_catalog.regclass::pg_catalog.oid, s.oid, 0, null, false,
         pg_catalog.jsonb_build_object('owner', pg_catalog.pg_get_userbyid(s.srvowner), 'options', s.srvoptions,
           'acl', coalesce(s.srvacl, pg_catalog.acldefault('S', s.srvowner))::pg_catalog.text[])
    from pg_catalog.pg_foreign_server s
  union all
  select 'pg_tablespace', 'pg_catalog.pg_tablespace'::pg_catalog.regclass::pg_catalog.oid, t.oid, 0, null, false,
         pg_catalog.jsonb_build_object('owner', pg_catalog.pg_get_userbyid(t.spcowner), 'options', t.spcoptions,
           'acl', coalesce(t.spcacl, pg_catalog.acldefault('t', t.spcowner))::pg_catalog.text[])
    from pg_catalog.pg_tablespace t
  union all
  select 'pg_statistic_ext', 'pg_catalog.pg_statistic_ext'::pg_catalog.regclass::pg_catalog.oid, s.oid, 0, r.tbl, r.temp,
         pg_catalog.jsonb_build_object('definition', pg_catalog.md5(pg_catalog.concat_ws('|', s.stxname, s.stxnamespace, s.stxkeys,
                                         s.stxkind, s.stxexprs)),
           'owner', pg_catalog.pg_get_userbyid(s.stxowner), 'target', s.stxstattarget)
    from pg_catalog.pg_statistic_ext s join rel r on r.oid = s.stxrelid
),
objects as (
  select * from relations union all select * from columns union all select * from constraints
  union all select * from triggers union all select * from functions union all select * from rules
  union all select * from policies union all select * from namespaces union all select * from types
  union all select * from roles union all select * from databases union all select * from others
),
comments as (
  select d.classoid, d.objoid, d.objsubid, d.description, false as shared from pg_catalog.pg_description d where d.objoid >= 16384
  union all
  select d.classoid, d.objoid, 0, d.description, true from pg_catalog.pg_shdescription d
),
found as (
  select o.catalog, o.catalog || '/' || o.objid || '/' || o.subid as key, i.type, i.identity, o.tbl, o.temp, o.facets
    from objects o, pg_catalog.pg_identify_object(o.classid, o.objid, o.subid) i
  union all
  select 'pg_description', 'pg_description/' || c.classoid || '/' || c.objoid || '/' || c.objsubid, 'comment',
         'on ' || i.type || ' ' || i.identity, null,
         coalesce(i.schema ~ '^pg_(toast_)?temp_', false),
         pg_catalog.jsonb_build_object('text', c.description)
    from comments c, pg_catalog.pg_identify_object(c.classoid, c.objoid, c.objsubid) i
   where coalesce(i.schema !~ '^pg_(toast_)?temp_' or i.schema = pg_catalog.pg_my_temp_schema()::pg_catalog.regnamespace::pg_catalog.text, true)
  union all
  select 'pg_auth_members', 'pg_auth_members/' || m.roleid || '/' || m.member, 'role membership',
         pg_catalog.pg_get_userbyid(m.member) || ' in ' || pg_catalog.pg_get_userbyid(m.roleid), null, false,
         pg_catalog.jsonb_build_object('admin', m.admin_option, 'grantor', pg_catalog.pg_get_userbyid(m.grantor))
    from pg_catalog.pg_auth_members m
  union all
  select 'pg_db_role_setting', 'pg_db_role_setting/' || s.setdatabase || '/' || s.setrole, 'settings',
         case when s.setrole = 0 then 'for database ' || pg_catalog.current_database()
              when s.setdatabase = 0 then 'for role ' || pg_catalog.pg_get_userbyid(s.setrole)
              else 'for role ' || pg_catalog.pg_get_userbyid(s.setrole) || ' in database ' || pg_catalog.current_database() end,
         null, false, pg_catalog.jsonb_build_object('config', s.setconfig)
    from pg_catalog.pg_db_role_setting s
   where s.setdatabase in (0, (select d.oid from pg_catalog.pg_database d where d.datname = pg_catalog.current_database()))
  union all
  select 'builtin', 'builtin/' || b.catalog, 'built-in objects', b.catalog, null, false,
         pg_catalog.jsonb_build_object('digest', b.digest)
    from (
      select 'pg_class' as catalog, pg_catalog.md5(pg_catalog.string_agg(
               pg_catalog.concat_ws('|', c.oid, c.relowner, c.relacl, c.relrowsecurity, c.relforcerowsecurity, c.reloptions), ',' order by c.oid)) as digest
        from pg_catalog.pg_class c where c.oid < 16384
      union all
      select 'pg_attribute', pg_catalog.md5(pg_catalog.string_agg(pg_catalog.concat_ws('|', a.attrelid, a.attnum, a.attacl), ',' order by a.attrelid, a.attnum))
        from pg_catalog.pg_attribute a where a.attrelid < 16384 and a.attacl is not null
      union all
      select 'pg_proc', pg_catalog.md5(pg_catalog.string_agg(
               pg_catalog.concat_ws('|', p.oid, p.proowner, p.proacl, p.prosecdef, p.proconfig), ',' order by p.oid))
        from pg_catalog.pg_proc p where p.oid < 16384
      union all
      select 'pg_type', pg_catalog.md5(pg_catalog.string_agg(pg_catalog.concat_ws('|', t.oid, t.typowner, t.typacl), ',' order by t.oid))
        from pg_catalog.pg_type t where t.oid < 16384

    ) b
  union all
  select 'storage', 'storage', 'storage', 'relfilenodes', null, false,
         pg_catalog.jsonb_object_agg(c.oid, c.relfilenode)
    from pg_catalog.pg_class c join ns on ns.oid = c.relnamespace
   where c.oid >= 16384 and (not ns.is_temp or ns.own_temp)
)
select w.catalog, w.key, w.type, w.identity, w.tbl, w.temp, w.facets, pg_catalog.md5(w.facets::pg_catalog.text) as hash
  from found w
`;
