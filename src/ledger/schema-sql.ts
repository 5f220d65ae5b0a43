/**
 * The ledger's storage and its trigger functions, as SQL text: `protect --dry-run` prints it,
 * `protect` runs it. Every statement is idempotent, so installing twice changes nothing.
 *
 * The layout of `safe_run.ledger` and `safe_run.ledger_rows` is shared with `recover`: columns
 * may be added, never renamed. Added here: `sealed_in` (the audit seq of the seal that copied
 * the row into the evidence directory; sealing goes by it, not by id, because a transaction
 * that commits late has a smaller id) and `pending_drop` (a DROP candidate whose rows were
 * copied at ddl_command_start and that sql_drop has not confirmed yet).
 *
 * The functions are SECURITY DEFINER so that any writer records, whatever its privileges;
 * inside them current_user is the owner, so the writer is `session_user` and, after SET
 * ROLE, current_setting('role'). Each has a fixed search_path, so no object a writer
 * creates can stand in for the ones they call.
 */
const FN = 'security definer set search_path = pg_catalog, pg_temp';

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
  pending_drop boolean not null default false
)`,
  `create table if not exists safe_run.ledger_rows (
  ledger_id bigint not null references safe_run.ledger(id),
  side text not null check (side in ('old', 'new')),
  row jsonb not null
)`,
  'create index if not exists ledger_rows_ledger_id on safe_run.ledger_rows (ledger_id)',
  'create index if not exists ledger_xid on safe_run.ledger (xid)',
  'create index if not exists ledger_unsealed on safe_run.ledger (id) where sealed_in is null',
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
 * in Node, not in a trigger.
 */
const FINGERPRINT_SQL = `create or replace function safe_run.statement_fingerprint(q text) returns text
language sql immutable set search_path = pg_catalog, pg_temp as $fn$
  select pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(pg_catalog.btrim(
    pg_catalog.regexp_replace(pg_catalog.regexp_replace(pg_catalog.regexp_replace(pg_catalog.lower(q),
      '''([^'']|'''')*''', '?', 'g'), '\\m[0-9]+(\\.[0-9]+)?\\M', '?', 'g'), '\\s+', ' ', 'g')), 'UTF8')), 'hex')
$fn$`;

const APPEND_SQL = `create or replace function safe_run.ledger_append(
  op text, tschema text, tname text, ident text, n bigint, kept bigint, textmode text, pending boolean)
returns bigint language plpgsql ${FN} as $fn$
declare
  q text := pg_catalog.current_query();
  lid bigint;
begin
  insert into safe_run.ledger (xid, statement_at, recorded_at, session_role, outer_role, application_name,
    client_addr, backend_pid, backend_start, table_schema, table_name, operation, object_identity, row_count,
    statement, statement_fingerprint, rows_kept, rows_not_kept, pending_drop)
  values (pg_catalog.pg_current_xact_id(), pg_catalog.statement_timestamp(), pg_catalog.clock_timestamp(),
    session_user, nullif(pg_catalog.current_setting('role'), 'none'),
    nullif(pg_catalog.current_setting('application_name'), ''), pg_catalog.inet_client_addr(),
    pg_catalog.pg_backend_pid(),
    (select a.backend_start from pg_catalog.pg_stat_get_activity(pg_catalog.pg_backend_pid()) a),
    tschema, tname, op, ident, n,
    case when textmode = 'fingerprint' then null else q end, safe_run.statement_fingerprint(q), kept, n - kept, pending)
  returning id into lid;
  return lid;
end $fn$`;

/**
 * One function for INSERT, UPDATE and DELETE: the trigger's arguments say whether rows are
 * kept, the cap, and the statement text mode. A statement that changed no row is not
 * recorded: it changed nothing. PL/pgSQL plans each query on first use, so the transition
 * table an event lacks is never referenced.
 */
const DML_SQL = `create or replace function safe_run.ledger_dml() returns trigger language plpgsql ${FN} as $fn$
declare
  keep boolean := tg_argv[0] = 'keep';
  cap bigint := tg_argv[1]::bigint;
  n bigint;
  kept bigint;
  lid bigint;
begin
  if tg_op = 'DELETE' then select pg_catalog.count(*) into n from safe_run_old;
  else select pg_catalog.count(*) into n from safe_run_new;
  end if;
  if n = 0 then return null; end if;
  kept := case when keep then least(n, cap) else 0 end;
  lid := safe_run.ledger_append(tg_op, tg_table_schema, tg_table_name, null, n, kept, tg_argv[2], false);
  if kept > 0 and tg_op in ('UPDATE', 'DELETE') then
    insert into safe_run.ledger_rows (ledger_id, side, row) select lid, 'old', pg_catalog.to_jsonb(o) from safe_run_old o limit kept;
  end if;
  if kept > 0 and tg_op in ('UPDATE', 'INSERT') then
    insert into safe_run.ledger_rows (ledger_id, side, row) select lid, 'new', pg_catalog.to_jsonb(o) from safe_run_new o limit kept;
  end if;
  return null;
end $fn$`;

/**
 * BEFORE TRUNCATE: the only moment the rows and their count still exist. A partitioned
 * parent holds no rows of its own; its partitions' triggers fire for the same TRUNCATE.
 */
const TRUNCATE_SQL = `create or replace function safe_run.ledger_truncate() returns trigger language plpgsql ${FN} as $fn$
declare
  keep boolean := tg_argv[0] = 'keep';
  cap bigint := tg_argv[1]::bigint;
  n bigint;
  kept bigint;
  lid bigint;
begin
  if (select c.relkind from pg_catalog.pg_class c where c.oid = tg_relid) = 'p' then return null; end if;
  execute pg_catalog.format('select pg_catalog.count(*) from %I.%I', tg_table_schema, tg_table_name) into n;
  kept := case when keep then least(n, cap) else 0 end;
  lid := safe_run.ledger_append('TRUNCATE', tg_table_schema, tg_table_name, null, n, kept, tg_argv[2], false);
  if kept > 0 then
    execute pg_catalog.format('insert into safe_run.ledger_rows (ledger_id, side, row)
      select $1, ''old'', pg_catalog.to_jsonb(t) from %I.%I t limit $2', tg_table_schema, tg_table_name) using lid, kept;
  end if;
  return null;
end $fn$`;

/** Whether a statement names an identifier (any case, quoted or not): a cheap over-approximation, confirmed by sql_drop. */
const MENTIONS_SQL = `create or replace function safe_run.mentions(q text, name text) returns boolean
language sql immutable set search_path = pg_catalog, pg_temp as $fn$
  select q ~* ('(^|[^[:alnum:]_$])' || pg_catalog.regexp_replace(name, '([^[:alnum:]_])', '\\\\\\1', 'g') || '($|[^[:alnum:]_$])')
$fn$`;

/**
 * ddl_command_start of DROP TABLE / DROP SCHEMA: sql_drop fires after the rows are gone, so
 * every protected table the statement may drop is copied now, as a pending DROP.
 * ddl_command_end removes the candidates sql_drop did not confirm.
 */
const DROP_START_SQL = `create or replace function safe_run.ledger_drop_start() returns event_trigger language plpgsql ${FN} as $fn$
declare
  q text := pg_catalog.current_query();
  s record;
  p record;
  n bigint;
  kept bigint;
  lid bigint;
begin
  select * into s from safe_run.ledger_settings;
  for p in select pr.* from safe_run.protected pr
    join pg_catalog.pg_namespace ns on ns.nspname = pr.table_schema
    join pg_catalog.pg_class c on c.relnamespace = ns.oid and c.relname = pr.table_name
  loop
    -- A name with a double quote is written with it doubled.
    if (tg_tag = 'DROP TABLE' and (safe_run.mentions(q, p.table_name) or safe_run.mentions(q, pg_catalog.replace(p.table_name, '"', '""'))))
       or (tg_tag = 'DROP SCHEMA' and (safe_run.mentions(q, p.table_schema) or safe_run.mentions(q, pg_catalog.replace(p.table_schema, '"', '""')))) then
      execute pg_catalog.format('select pg_catalog.count(*) from %I.%I', p.table_schema, p.table_name) into n;
      kept := case when p.keep_rows then least(n, s.keep_rows_max) else 0 end;
      lid := safe_run.ledger_append('DROP', p.table_schema, p.table_name, null, n, kept, s.statement_text, true);
      if kept > 0 then
        execute pg_catalog.format('insert into safe_run.ledger_rows (ledger_id, side, row)
          select $1, ''old'', pg_catalog.to_jsonb(t) from %I.%I t limit $2', p.table_schema, p.table_name) using lid, kept;
      end if;
    end if;
  end loop;
end $fn$`;

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
    if r.object_type = 'table' then
      update safe_run.ledger l set pending_drop = false, object_identity = r.object_identity
       where l.xid = pg_catalog.pg_current_xact_id() and l.pending_drop
         and l.table_schema = r.schema_name and l.table_name = r.object_name;
      get diagnostics confirmed = row_count;
      continue when confirmed > 0;
    end if;
    perform safe_run.ledger_append('DROP', r.schema_name,
      case when r.object_type = 'table' then r.object_name end, r.object_identity, 0, 0, s.statement_text, false);
  end loop;
end $fn$`;

/** ddl_command_end: what was created or altered (DROP is sql_drop's), and the cleanup of unconfirmed DROP candidates. */
const DDL_END_SQL = `create or replace function safe_run.ledger_ddl_end() returns event_trigger language plpgsql ${FN} as $fn$
declare
  s record;
  r record;
begin
  if tg_tag in ('DROP TABLE', 'DROP SCHEMA') then
    delete from safe_run.ledger_rows lr using safe_run.ledger l
     where lr.ledger_id = l.id and l.xid = pg_catalog.pg_current_xact_id() and l.pending_drop;
    delete from safe_run.ledger l where l.xid = pg_catalog.pg_current_xact_id() and l.pending_drop;
    return;
  end if;
  select * into s from safe_run.ledger_settings;
  for r in select * from pg_catalog.pg_event_trigger_ddl_commands() loop
    continue when r.schema_name in ('pg_temp', 'safe_run') or r.object_identity = 'safe_run';
    perform safe_run.ledger_append('DDL', r.schema_name,
      case when r.classid = 'pg_catalog.pg_class'::pg_catalog.regclass and r.object_type like 'table%'
        then (select c.relname::text from pg_catalog.pg_class c where c.oid = r.objid) end,
      r.object_identity, 0, 0, s.statement_text, false);
  end loop;
end $fn$`;

/**
 * The guarded run reads its own transaction's ledger statements through this, since the
 * script's role may not read safe_run: only rows of the caller's own transaction come back.
 */
const OWN_SQL = `create or replace function safe_run.ledger_own_statements()
returns table (table_schema text, table_name text, operation text, statements bigint, row_count bigint, kept_rows bigint)
language sql stable ${FN} as $fn$
  select l.table_schema, l.table_name, l.operation, pg_catalog.count(*), pg_catalog.sum(l.row_count)::bigint,
         coalesce((select pg_catalog.count(*) from safe_run.ledger_rows lr
                    join safe_run.ledger l2 on l2.id = lr.ledger_id
                   where l2.xid = pg_catalog.pg_current_xact_id_if_assigned()
                     and l2.table_schema is not distinct from l.table_schema
                     and l2.table_name is not distinct from l.table_name
                     and l2.operation = l.operation), 0)::bigint
    from safe_run.ledger l
   where l.xid = pg_catalog.pg_current_xact_id_if_assigned()
   group by 1, 2, 3
$fn$`;

export const LEDGER_FUNCTIONS_SQL: readonly string[] = [
  FINGERPRINT_SQL,
  APPEND_SQL,
  DML_SQL,
  TRUNCATE_SQL,
  MENTIONS_SQL,
  DROP_START_SQL,
  SQL_DROP_SQL,
  DDL_END_SQL,
  OWN_SQL,
  // Nobody but the triggers may write a ledger row; anyone may read their own transaction's.
  `revoke all on function safe_run.ledger_append(text, text, text, text, bigint, bigint, text, boolean),
     safe_run.ledger_dml(), safe_run.ledger_truncate(), safe_run.ledger_drop_start(), safe_run.ledger_sql_drop(),
     safe_run.ledger_ddl_end() from public`,
  'grant usage on schema safe_run to public',
  'grant execute on function safe_run.ledger_own_statements() to public',
];

export const EVENT_TRIGGERS = [
  { name: 'safe_run_ledger_drop_start', event: 'ddl_command_start', fn: 'ledger_drop_start', tags: ['DROP TABLE', 'DROP SCHEMA'] },
  { name: 'safe_run_ledger_sql_drop', event: 'sql_drop', fn: 'ledger_sql_drop', tags: [] },
  { name: 'safe_run_ledger_ddl_end', event: 'ddl_command_end', fn: 'ledger_ddl_end', tags: [] },
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
