/**
 * The ledger's storage and its trigger functions, as SQL text: `protect --dry-run` prints it,
 * `protect` runs it. Every statement is idempotent, so installing twice changes nothing.
 *
 * The layout of `safe_run.ledger` and `safe_run.ledger_rows` is shared with `recover`: columns
 * may be added, never renamed. Added here: `sealed_in` (the audit seq of the seal that copied
 * the row into the evidence directory; sealing goes by it, not by id, because a transaction
 * that commits late has a smaller id), `pending_drop` (a DROP candidate whose rows were
 * copied at ddl_command_start and that sql_drop has not confirmed yet) and `old_rows`,
 * `new_rows` (the kept rows of a small statement, inline: INLINE_ROWS_MAX). kept-rows.ts reads
 * kept rows from both places.
 *
 * The functions are SECURITY DEFINER so that any writer records, whatever its privileges;
 * inside them current_user is the owner, so the writer is `session_user` and, after SET
 * ROLE, current_setting('role'). Each has a fixed search_path, so no object a writer
 * creates can stand in for the ones they call.
 */
const FN = 'security definer set search_path = pg_catalog, pg_temp';

/** The ledger's BEFORE TRUNCATE trigger: every protected table and partition has one, so the drop trigger finds them by it. */
export const TRUNCATE_TRIGGER = 'safe_run_ledger_truncate';

/**
 * What each write costs is the point here (issue 12's targets): every index and every check
 * on these tables is paid once per statement, and on `ledger_rows` once per kept row.
 * - `ledger` has its primary key and one partial index over the unsealed rows: sealing reads
 *   those, and a transaction's own rows (the guarded run's cross-check, the DROP
 *   bookkeeping) are unsealed too, so they are found through it as well.
 * - `ledger_rows` has no foreign key (a referential check per kept row cost more than the
 *   row itself; only the triggers write there) and a BRIN index on `ledger_id`, which grows
 *   with the ids, instead of a B-tree entry per row.
 * An older install is brought to this layout; its rows stay.
 */
export const LEDGER_STORAGE_SQL: readonly string[] = [
  'create schema if not exists safe_run',
  `create table if not exists safe_run.ledger (
  id bigint generated always as identity primary key,
  xid xid8 not null,
  statement_at timestamptz not null,
  recorded_at timestamptz not null,
  session_role text not null,
  outer_role text,
  application_name text,
  client_addr inet,
  backend_pid int not null,
  backend_start timestamptz,
  table_schema text,
  table_name text,
  operation text not null,
  object_identity text,
  row_count bigint not null default 0,
  statement text,
  statement_fingerprint text,
  rows_kept bigint not null default 0,
  rows_not_kept bigint not null default 0,
  sealed_in bigint,
  pending_drop boolean not null default false,
  old_rows jsonb,
  new_rows jsonb
)`,
  'alter table safe_run.ledger add column if not exists old_rows jsonb, add column if not exists new_rows jsonb',
  `create table if not exists safe_run.ledger_rows (
  ledger_id bigint not null,
  side text not null check (side in ('old', 'new')),
  row jsonb not null
)`,
  'alter table safe_run.ledger_rows drop constraint if exists ledger_rows_ledger_id_fkey',
  'drop index if exists safe_run.ledger_rows_ledger_id',
  'drop index if exists safe_run.ledger_xid',
  'create index if not exists ledger_rows_ledger_id_brin on safe_run.ledger_rows using brin (ledger_id)',
  'create index if not exists ledger_unsealed on safe_run.ledger (id) where sealed_in is null',
  // The last switch of a table's ledger triggers (LEDGER_SWITCHES), looked up by DDL only: a few rows, no cost to a write.
  `create index if not exists ledger_switches on safe_run.ledger (table_schema, table_name, id) where operation in ('LEDGER OFF', 'LEDGER ON')`,
  // What `protect` installed, so doctor and check can tell a missing trigger from an unprotected table.
  `create table if not exists safe_run.protected (
  table_schema text not null,
  table_name text not null,
  keep_rows boolean not null,
  installed_at timestamptz not null default pg_catalog.now(),
  primary key (table_schema, table_name)
)`,
  // One row: what the event triggers, which take no arguments, need to know.
  `create table if not exists safe_run.ledger_settings (
  one boolean primary key default true check (one),
  statement_text text not null,
  keep_rows_max bigint not null
)`,
  'revoke all on safe_run.ledger, safe_run.ledger_rows, safe_run.protected, safe_run.ledger_settings from public',
];

/**
 * A fingerprint computed inside PostgreSQL, since out-of-band writers never pass through
 * safe-run: sha256 of the statement with string and number literals replaced by `?`,
 * lower-cased, whitespace collapsed. libpg-query's fingerprint would be finer, but it runs
 * in Node, not in a trigger. Only with `ledger.statementText: "fingerprint"`: beside the
 * text it would only repeat it, at three regular expressions per statement.
 */
const FINGERPRINT_SQL = `create or replace function safe_run.statement_fingerprint(q text) returns text
language sql immutable set search_path = pg_catalog, pg_temp as $fn$
  select pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(pg_catalog.btrim(
    pg_catalog.regexp_replace(pg_catalog.regexp_replace(pg_catalog.regexp_replace(pg_catalog.lower(q),
      '''([^'']|'''')*''', '?', 'g'), '\\m[0-9]+(\\.[0-9]+)?\\M', '?', 'g'), '\\s+', ' ', 'g')), 'UTF8')), 'hex')
$fn$`;

/**
 * The one ledger row every trigger writes, as SQL shared by all of them: the statement
 * triggers inline it (their cost is what they run per statement), the rarer TRUNCATE and
 * event triggers reach it through ledger_append. Each argument is an SQL expression;
 * `textMode` gives 'text' or 'fingerprint'.
 */
const LEDGER_COLUMNS = `xid, statement_at, recorded_at, session_role, outer_role, application_name, client_addr,
    backend_pid, backend_start, table_schema, table_name, operation, object_identity, row_count, statement,
    statement_fingerprint, rows_kept, rows_not_kept, pending_drop`;

interface LedgerRowSql {
  readonly op: string;
  readonly schema: string;
  readonly table: string;
  readonly ident: string;
  readonly n: string;
  readonly kept: string;
  readonly textMode: string;
  readonly pending: string;
}

function ledgerValues(v: LedgerRowSql): string {
  return `pg_catalog.pg_current_xact_id(), pg_catalog.statement_timestamp(), pg_catalog.clock_timestamp(),
    session_user, nullif(pg_catalog.current_setting('role'), 'none'),
    nullif(pg_catalog.current_setting('application_name'), ''), pg_catalog.inet_client_addr(), pg_catalog.pg_backend_pid(),
    coalesce(nullif(pg_catalog.current_setting('safe_run.backend_start', true), '')::timestamptz, safe_run.ledger_backend_start()),
    ${v.schema}, ${v.table}, ${v.op}, ${v.ident}, ${v.n},
    case when ${v.textMode} = 'fingerprint' then null else pg_catalog.current_query() end,
    case when ${v.textMode} = 'fingerprint' then safe_run.statement_fingerprint(pg_catalog.current_query()) end,
    ${v.kept}, ${v.n} - ${v.kept}, ${v.pending}`;
}

/** How many of n rows are kept: the one rule every trigger applies. */
function keptOf(keep: string, n: string, cap: string): string {
  return `case when ${keep} then least(${n}, ${cap}) else 0 end`;
}

/**
 * Up to `kept` rows of each source, as JSON, for ledger row `lid`: set-wise, one statement.
 * `t.*`, not `t`: a bare `t` names a column `t` of the protected table before the whole row.
 */
function keepRowsSql(lid: string, kept: string, sources: readonly { side: 'old' | 'new'; from: string }[]): string {
  return `insert into safe_run.ledger_rows (ledger_id, side, row)
      ${sources.map((s) => `select ${lid}, '${s.side}', pg_catalog.to_jsonb(t.*) from (select * from ${s.from} limit ${kept}) t`).join('\n      union all ')}`;
}

/**
 * The backend's start time, read once per session: pg_stat_get_activity() builds the row of
 * every backend, which cost more than the rest of a ledger row. The session keeps it in a
 * setting, so a writer can overwrite it (as it can its application_name); pid, xid, role
 * and statement come from the server each time.
 */
const BACKEND_START_SQL = `create or replace function safe_run.ledger_backend_start() returns timestamptz language sql ${FN} as $fn$
  select pg_catalog.set_config('safe_run.backend_start', a.backend_start::text, false)::timestamptz
    from pg_catalog.pg_stat_get_activity(pg_catalog.pg_backend_pid()) a
$fn$`;

const APPEND_SQL = `create or replace function safe_run.ledger_append(
  op text, tschema text, tname text, ident text, n bigint, keep boolean, cap bigint, textmode text, pending boolean)
returns table (id bigint, kept bigint) language sql ${FN} as $fn$
  insert into safe_run.ledger (${LEDGER_COLUMNS})
  values (${ledgerValues({ op: 'op', schema: 'tschema', table: 'tname', ident: 'ident', n: 'n', kept: keptOf('keep', 'n', 'cap'), textMode: 'textmode', pending: 'pending' })})
  returning id, rows_kept
$fn$`;

/**
 * A whole table's rows and their count, as the old side of one ledger row: TRUNCATE and
 * DROP have no transition table, so the table is read by name.
 */
const KEEP_TABLE_SQL = `create or replace function safe_run.ledger_keep_table(
  op text, tschema text, tname text, keep boolean, cap bigint, textmode text, pending boolean)
returns void language plpgsql ${FN} as $fn$
declare
  n bigint;
  a record;
begin
  execute pg_catalog.format('select pg_catalog.count(*) from %I.%I', tschema, tname) into n;
  select * into a from safe_run.ledger_append(op, tschema, tname, null, n, keep, cap, textmode, pending);
  if a.kept > 0 then
    execute pg_catalog.format('${keepRowsSql('$1', '$2', [{ side: 'old', from: '%I.%I' }]).replace(/'/g, "''")}', tschema, tname) using a.id, a.kept;
  end if;
end $fn$`;

/**
 * A statement that keeps at most this many rows holds them inline, as JSON arrays in its own
 * ledger row: one insert per statement instead of one more per kept row, which was most of
 * what the ledger cost a single-row UPDATE or INSERT. A larger statement keeps its rows in
 * ledger_rows, one row each (packing them into chunks cost more: jsonb_agg builds every row
 * again, BENCHMARKS.md).
 */
export const INLINE_ROWS_MAX = 100;

/**
 * INSERT, UPDATE and DELETE: one function each, since a function can only name the
 * transition tables its event has. A statement that changed no row is not recorded: it
 * changed nothing. The trigger's arguments, fixed at `protect` time, say whether rows are
 * kept, the cap and the statement text mode, so nothing is looked up per statement.
 * With kept rows, one pass over at most INLINE_ROWS_MAX + 1 rows gives a small statement's
 * count and rows together, and its ledger row is written with them; a larger statement is
 * counted in full, its ledger row written, and up to the cap of its rows kept set-wise.
 */
export const DML_OPERATIONS = ['INSERT', 'UPDATE', 'DELETE'] as const;

function dmlFunctionSql(op: (typeof DML_OPERATIONS)[number]): string {
  const sources = [
    ...(op === 'INSERT' ? [] : [{ side: 'old' as const, from: 'safe_run_old' }]),
    ...(op === 'DELETE' ? [] : [{ side: 'new' as const, from: 'safe_run_new' }]),
  ];
  const first = sources[0]!;
  const row = (kept: string): string =>
    ledgerValues({
      op: 'tg_op',
      schema: 'tg_table_schema',
      table: 'tg_table_name',
      ident: 'null',
      n: 'n',
      kept,
      textMode: 'tg_argv[2]',
      pending: 'false',
    });
  const inline = `least(${INLINE_ROWS_MAX}, tg_argv[1]::bigint)`;
  // UPDATE: the new rows, as many as the old ones, in a second pass over the new table.
  const otherSide = op === 'UPDATE' ? '\n      select pg_catalog.jsonb_agg(t.*) into new_side from safe_run_new t;' : '';
  const oldRows = op === 'INSERT' ? 'null' : 'first_rows';
  const newRows = op === 'INSERT' ? 'first_rows' : op === 'UPDATE' ? 'new_side' : 'null';
  // The block label qualifies `lid` and `kept` where a column of the protected table could have their names.
  return `create or replace function safe_run.ledger_${op.toLowerCase()}() returns trigger language plpgsql ${FN} as $fn$
<<safe_run_ledger>>
declare
  n bigint;
  kept bigint;
  lid bigint;
  first_rows jsonb;
  new_side jsonb;
begin
  if tg_argv[0] = 'keep' then
    select pg_catalog.count(*), pg_catalog.jsonb_agg(t.*) into n, first_rows from (select * from ${first.from} limit ${inline} + 1) t;
    if n = 0 then return null; end if;
    if n <= ${inline} then${otherSide}
      insert into safe_run.ledger (${LEDGER_COLUMNS}, old_rows, new_rows)
      values (${row('n')}, ${oldRows}, ${newRows});
      return null;
    end if;
  end if;
  select pg_catalog.count(*) into n from ${first.from};
  if n = 0 then return null; end if;
  kept := ${keptOf("tg_argv[0] = 'keep'", 'n', 'tg_argv[1]::bigint')};
  insert into safe_run.ledger (${LEDGER_COLUMNS})
  values (${row('kept')})
  returning id into lid;
  if kept > 0 then
    ${keepRowsSql('safe_run_ledger.lid', 'safe_run_ledger.kept', sources)};
  end if;
  return null;
end $fn$`;
}

/**
 * BEFORE TRUNCATE: the only moment the rows and their count still exist. A partitioned
 * parent holds no rows of its own; its partitions' triggers fire for the same TRUNCATE.
 */
const TRUNCATE_SQL = `create or replace function safe_run.ledger_truncate() returns trigger language plpgsql ${FN} as $fn$
begin
  if (select c.relkind from pg_catalog.pg_class c where c.oid = tg_relid) = 'p' then return null; end if;
  perform safe_run.ledger_keep_table('TRUNCATE', tg_table_schema, tg_table_name, tg_argv[0] = 'keep', tg_argv[1]::bigint, tg_argv[2], false);
  return null;
end $fn$`;

/** Whether a statement names an identifier (any case, quoted or not): a cheap over-approximation, confirmed by sql_drop. */
const MENTIONS_SQL = `create or replace function safe_run.mentions(q text, name text) returns boolean
language sql immutable set search_path = pg_catalog, pg_temp as $fn$
  select q ~* ('(^|[^[:alnum:]_$])' || pg_catalog.regexp_replace(name, '([^[:alnum:]_])', '\\\\\\1', 'g') || '($|[^[:alnum:]_$])')
$fn$`;

/**
 * ddl_command_start of DROP TABLE, DROP SCHEMA, DROP OWNED and DROP TYPE: sql_drop fires after the rows
 * are gone, so every watched table the statement may drop is copied now, as a pending DROP.
 * ddl_command_end removes the candidates sql_drop did not confirm.
 *
 * Watched: a protected table under its name, and any table that carries a ledger trigger: a
 * protected table's partitions (DROP TABLE of one partition takes its rows, and the parent's
 * name is not in the statement), one detached from it since, one renamed or moved away.
 * - DROP TABLE of a parent takes its partitions and inheritance children along: a watched
 *   table is a candidate when it or one of its ancestors is named. A partition whose parent
 *   is copied too is not copied again: the parent's copy holds its rows.
 * - DROP OWNED BY names a role, not a table: the tables of that owner are the candidates
 *   (CURRENT_USER, CURRENT_ROLE and SESSION_USER read as the writer's roles; current_user in
 *   here is the function's owner).
 * - DROP TYPE ... CASCADE takes a table made `OF` that type along.
 */
const DROP_START_SQL = `create or replace function safe_run.ledger_drop_start() returns event_trigger language plpgsql ${FN} as $fn$
declare
  q text := pg_catalog.current_query();
  writer text := coalesce(nullif(pg_catalog.current_setting('role'), 'none'), session_user);
  by_keyword boolean := q ~* '(^|[^[:alnum:]_$])(current_user|current_role|session_user)($|[^[:alnum:]_$])';
  s record;
  p record;
begin
  select * into s from safe_run.ledger_settings;
  for p in
    -- Found from the few rows that name them (every DROP TABLE runs this, temporary ones too).
    with recursive ids (oid) as (
      select tg.tgrelid from pg_catalog.pg_trigger tg where tg.tgname = '${TRUNCATE_TRIGGER}'
      union
      select c.oid from safe_run.protected pr
        join pg_catalog.pg_namespace ns on ns.nspname = pr.table_schema
        join pg_catalog.pg_class c on c.relnamespace = ns.oid and c.relname = pr.table_name
    ),
    up (child, parent) as (
      select i.inhrelid, i.inhparent from pg_catalog.pg_inherits i join ids on ids.oid = i.inhrelid
      union
      select up.child, i.inhparent from up join pg_catalog.pg_inherits i on i.inhrelid = up.parent
    ),
    watched as (
      select c.oid, ns.nspname::text as table_schema, c.relname::text as table_name,
             pg_catalog.pg_get_userbyid(c.relowner)::text as owner, coalesce(pr.keep_rows, t.keep) as keep_rows,
             (select ty.typname::text from pg_catalog.pg_type ty where ty.oid = c.reloftype) as of_type,
             array(select a.relname::text from up join pg_catalog.pg_class a on a.oid = up.parent where up.child = c.oid) as ancestors
        from ids
        join pg_catalog.pg_class c on c.oid = ids.oid and c.relkind in ('r', 'p')
        join pg_catalog.pg_namespace ns on ns.oid = c.relnamespace
        left join safe_run.protected pr on pr.table_schema = ns.nspname and pr.table_name = c.relname
        left join lateral (select pg_catalog.encode(tg.tgargs, 'escape') like 'keep%' as keep from pg_catalog.pg_trigger tg
                            where tg.tgrelid = c.oid and tg.tgname = '${TRUNCATE_TRIGGER}') t on true
    ),
    -- A name with a double quote is written with it doubled.
    dropped as (
      select w.* from watched w
       where case tg_tag
               when 'DROP TABLE' then exists (select from pg_catalog.unnest(w.table_name || w.ancestors) n(name)
                                               where safe_run.mentions(q, n.name) or safe_run.mentions(q, pg_catalog.replace(n.name, '"', '""')))
               when 'DROP SCHEMA' then safe_run.mentions(q, w.table_schema) or safe_run.mentions(q, pg_catalog.replace(w.table_schema, '"', '""'))
               when 'DROP OWNED' then safe_run.mentions(q, w.owner) or safe_run.mentions(q, pg_catalog.replace(w.owner, '"', '""'))
                 or (by_keyword and w.owner in (writer, session_user))
               when 'DROP TYPE' then safe_run.mentions(q, w.of_type) or safe_run.mentions(q, pg_catalog.replace(w.of_type, '"', '""'))
               else false
             end
    )
    select d.* from dropped d
     where not exists (select from dropped a
                        where a.oid in (select x.relid::pg_catalog.oid from pg_catalog.pg_partition_ancestors(d.oid) x where x.relid::pg_catalog.oid <> d.oid))
  loop
    perform safe_run.ledger_keep_table('DROP', p.table_schema, p.table_name, p.keep_rows, s.keep_rows_max, s.statement_text, true);
  end loop;
end $fn$`;

/**
 * What a protected table's own ledger cannot record, it records around: a ledger trigger
 * disabled (`ALTER TABLE ... DISABLE TRIGGER`, what `pg_restore --disable-triggers` does) or
 * dropped is `LEDGER OFF` on that table, named with the session like any statement, and the
 * next ALTER TABLE that leaves none disabled is `LEDGER ON`: blame then says which windows
 * the ledger could not see. A protected table renamed (or moved) away, so that its name can
 * be taken by a new, empty table (the swap), is `RENAME` under its old name.
 */
export const LEDGER_SWITCHES = ['LEDGER OFF', 'LEDGER ON'] as const;

/** sql_drop: every object named in the statement, and every table it took along; temporary objects and safe_run's own are not recorded. */
const SQL_DROP_SQL = `create or replace function safe_run.ledger_sql_drop() returns event_trigger language plpgsql ${FN} as $fn$
declare
  s record;
  r record;
  confirmed int;
begin
  select * into s from safe_run.ledger_settings;
  for r in select * from pg_catalog.pg_event_trigger_dropped_objects() loop
    continue when r.is_temporary or r.schema_name = 'safe_run' or r.object_identity = 'safe_run';
    continue when not r.original and r.object_type not in ('table', 'schema');
    -- A ledger trigger dropped by itself (its table's drop takes them along, not original): the table is not recorded from now on.
    if r.object_type = 'trigger' and r.address_names[3] like 'safe\\_run\\_ledger\\_%' then
      perform safe_run.ledger_append('LEDGER OFF', r.address_names[1], r.address_names[2], r.object_identity, 0, false, 0, s.statement_text, false);
      continue;
    end if;
    if r.object_type = 'table' then
      update safe_run.ledger l set pending_drop = false, object_identity = r.object_identity
       where l.sealed_in is null and l.xid = pg_catalog.pg_current_xact_id() and l.pending_drop
         and l.table_schema = r.schema_name and l.table_name = r.object_name;
      get diagnostics confirmed = row_count;
      continue when confirmed > 0;
    end if;
    perform safe_run.ledger_append('DROP', r.schema_name,
      case when r.object_type = 'table' then r.object_name end, r.object_identity, 0, false, 0, s.statement_text, false);
  end loop;
end $fn$`;

/**
 * ddl_command_end: what was created or altered (DROP is sql_drop's), and the cleanup of
 * unconfirmed DROP candidates. A partition made or attached under a protected table gets
 * its ledger triggers here (ledger_cover_partitions, install.ts). An ALTER TABLE of a table
 * with ledger triggers is looked at after it ran (LEDGER_SWITCHES): switched off, on again,
 * or renamed away.
 */
const DDL_END_SQL = `create or replace function safe_run.ledger_ddl_end() returns event_trigger language plpgsql ${FN} as $fn$
declare
  s record;
  r record;
  op text;
  tschema text;
  tname text;
  part boolean;
  disabled bigint;
  triggers bigint;
  gone record;
  made oid[] := '{}';
  rel oid;
begin
  if tg_tag in ('DROP TABLE', 'DROP SCHEMA', 'DROP OWNED', 'DROP TYPE') then
    delete from safe_run.ledger_rows lr using safe_run.ledger l
     where lr.ledger_id = l.id and l.sealed_in is null and l.xid = pg_catalog.pg_current_xact_id() and l.pending_drop;
    delete from safe_run.ledger l where l.sealed_in is null and l.xid = pg_catalog.pg_current_xact_id() and l.pending_drop;
    return;
  end if;
  select * into s from safe_run.ledger_settings;
  for r in select * from pg_catalog.pg_event_trigger_ddl_commands() loop
    continue when r.schema_name in ('pg_temp', 'safe_run') or r.object_identity = 'safe_run';
    op := 'DDL';
    tschema := r.schema_name;
    tname := null;
    if r.classid = 'pg_catalog.pg_class'::pg_catalog.regclass and r.object_type like 'table%' then
      select c.relname::text, c.relispartition into tname, part from pg_catalog.pg_class c where c.oid = r.objid;
      if r.command_tag in ('CREATE TABLE', 'ALTER TABLE') then made := made || r.objid; end if;
      if r.command_tag = 'ALTER TABLE' then
        select pg_catalog.count(*) filter (where t.tgenabled = 'D'), pg_catalog.count(*) into disabled, triggers
          from pg_catalog.pg_trigger t where t.tgrelid = r.objid and t.tgname like 'safe\\_run\\_ledger\\_%';
      else
        triggers := 0;
      end if;
      -- Ledger triggers on a table that is not protected under its name, and a protected name
      -- that no longer exists: renamed (or moved) away. Partitions carry triggers under their own names.
      if triggers > 0 and not part and not exists (
          select from safe_run.protected p where p.table_schema = tschema and p.table_name = tname) then
        select p.table_schema, p.table_name into gone from safe_run.protected p
         where pg_catalog.to_regclass(pg_catalog.format('%I.%I', p.table_schema, p.table_name)) is null limit 1;
        if found then
          op := 'RENAME';
          tschema := gone.table_schema;
          tname := gone.table_name;
        end if;
      end if;
      if triggers > 0 and op = 'DDL' then
        if disabled > 0 then
          op := 'LEDGER OFF';
        elsif (select l.operation from safe_run.ledger l
                where l.table_schema = tschema and l.table_name = tname and l.operation in ('LEDGER OFF', 'LEDGER ON')
                order by l.id desc limit 1) = 'LEDGER OFF' then
          op := 'LEDGER ON';
        end if;
      end if;
    end if;
    perform safe_run.ledger_append(op, tschema, tname, r.object_identity, 0, false, 0, s.statement_text, false);
  end loop;
  -- After the loop: the triggers it creates are DDL too, recorded by this same function.
  foreach rel in array made loop
    perform safe_run.ledger_cover_partitions(rel);
  end loop;
end $fn$`;

/**
 * The guarded run reads its own transaction's ledger statements through this, since the
 * script's role may not read safe_run: only rows of the caller's own transaction come back.
 * `kept_rows` counts every kept row, inline or not; `ledger_rows` the rows written to
 * safe_run.ledger_rows, which is what the guard allows there.
 */
const OWN_SQL = `create or replace function safe_run.ledger_own_statements()
returns table (table_schema text, table_name text, operation text, statements bigint, row_count bigint, kept_rows bigint,
  ledger_rows bigint)
language sql stable ${FN} as $fn$
  with own as (
    select l.id, l.table_schema, l.table_name, l.operation, l.row_count,
           coalesce(pg_catalog.jsonb_array_length(l.old_rows), 0) + coalesce(pg_catalog.jsonb_array_length(l.new_rows), 0) as inline
      from safe_run.ledger l
     where l.sealed_in is null and l.xid = pg_catalog.pg_current_xact_id_if_assigned()
  ), apart as (
    select lr.ledger_id, pg_catalog.count(*) as n from safe_run.ledger_rows lr where lr.ledger_id in (select id from own) group by 1
  )
  select o.table_schema, o.table_name, o.operation, pg_catalog.count(*), pg_catalog.sum(o.row_count)::bigint,
         pg_catalog.sum(o.inline + coalesce(a.n, 0))::bigint, coalesce(pg_catalog.sum(a.n), 0)::bigint
    from own o left join apart a on a.ledger_id = o.id
   group by 1, 2, 3
$fn$`;

export const LEDGER_FUNCTIONS_SQL: readonly string[] = [
  FINGERPRINT_SQL,
  BACKEND_START_SQL,
  APPEND_SQL,
  KEEP_TABLE_SQL,
  ...DML_OPERATIONS.map(dmlFunctionSql),
  TRUNCATE_SQL,
  MENTIONS_SQL,
  DROP_START_SQL,
  SQL_DROP_SQL,
  DDL_END_SQL,
  // Its result gained a column: a function's result type cannot be replaced, only dropped and created.
  'drop function if exists safe_run.ledger_own_statements()',
  OWN_SQL,
  // Nobody but the triggers may write a ledger row; anyone may read their own transaction's.
  `revoke all on function safe_run.ledger_append(text, text, text, text, bigint, boolean, bigint, text, boolean),
     safe_run.ledger_keep_table(text, text, text, boolean, bigint, text, boolean), safe_run.ledger_backend_start(),
     safe_run.ledger_insert(), safe_run.ledger_update(), safe_run.ledger_delete(), safe_run.ledger_truncate(), safe_run.ledger_drop_start(), safe_run.ledger_sql_drop(),
     safe_run.ledger_ddl_end() from public`,
  'grant usage on schema safe_run to public',
  'grant execute on function safe_run.ledger_own_statements() to public',
];

/** `misses`: what goes unrecorded while one is missing or disabled (doctor and check say it). */
export const EVENT_TRIGGERS = [
  {
    name: 'safe_run_ledger_drop_start',
    event: 'ddl_command_start',
    fn: 'ledger_drop_start',
    tags: ['DROP TABLE', 'DROP SCHEMA', 'DROP OWNED', 'DROP TYPE'],
    misses: 'a protected table dropped loses its rows unkept',
  },
  { name: 'safe_run_ledger_sql_drop', event: 'sql_drop', fn: 'ledger_sql_drop', tags: [], misses: 'drops are not recorded' },
  { name: 'safe_run_ledger_ddl_end', event: 'ddl_command_end', fn: 'ledger_ddl_end', tags: [], misses: 'DDL is not recorded' },
] as const;

export function eventTriggerSql(): string[] {
  return EVENT_TRIGGERS.flatMap((e) => [
    `drop event trigger if exists ${e.name}`,
    `create event trigger ${e.name} on ${e.event}${e.tags.length ? ` when tag in (${e.tags.map((t) => `'${t}'`).join(', ')})` : ''} execute function safe_run.${e.fn}()`,
    // ALWAYS: session_replication_role = replica must not silence the ledger.
    `alter event trigger ${e.name} enable always`,
  ]);
}

export function dropEventTriggersSql(): string[] {
  return EVENT_TRIGGERS.map((e) => `drop event trigger if exists ${e.name}`);
}
