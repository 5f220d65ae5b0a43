import { sql } from 'kysely';
import type { Db } from '../db/connection.js';
import { keyOf, quoteTable } from '../db/names.js';
import { ExitCode, LOCK_NOT_AVAILABLE, SafeRunError, usageError } from '../errors.js';
import type { Logger } from '../logger.js';
import { dropEventTriggersSql, eventTriggerSql, LEDGER_FUNCTIONS_SQL, LEDGER_STORAGE_SQL, TRUNCATE_TRIGGER } from './schema-sql.js';

/**
 * What `protect` does, as a list of steps of SQL: printed before it runs (and instead of
 * running with --dry-run), then run one step per transaction. Trigger DDL takes a SHARE ROW
 * EXCLUSIVE lock on a busy table, so each step waits at most `lockTimeoutMs` and is retried.
 */
/** Schema and name apart: a table key is ambiguous for names with dots or quotes. */
export interface TableName {
  readonly schema: string;
  readonly table: string;
}

export interface ProtectTarget extends TableName {
  readonly keepRows: boolean;
}

export interface LedgerSettings {
  readonly statementText: 'text' | 'fingerprint';
  readonly keepRowsMax: number;
}

export interface InstallStep {
  /** One line for the operator: what this step changes. */
  readonly what: string;
  readonly statements: readonly string[];
}

export const DML_TRIGGERS = [
  { name: 'safe_run_ledger_insert', timing: 'after insert', referencing: 'referencing new table as safe_run_new', fn: 'ledger_insert' },
  {
    name: 'safe_run_ledger_update',
    timing: 'after update',
    referencing: 'referencing old table as safe_run_old new table as safe_run_new',
    fn: 'ledger_update',
  },
  { name: 'safe_run_ledger_delete', timing: 'after delete', referencing: 'referencing old table as safe_run_old', fn: 'ledger_delete' },
] as const;
export const LEDGER_TRIGGER_NAMES: readonly string[] = [...DML_TRIGGERS.map((t) => t.name), TRUNCATE_TRIGGER];

/** The table and every partition below it: a parent's statement trigger does not fire for a write to a partition. */
export async function resolveRelations(db: Db, { schema, table }: TableName): Promise<{ schema: string; name: string }[]> {
  const { rows } = await sql<{ schema: string; name: string }>`
    select n.nspname as schema, c.relname as name
      from pg_catalog.pg_class root
      join pg_catalog.pg_namespace rn on rn.oid = root.relnamespace
      cross join lateral (
        select root.oid as relid where root.relkind = 'r'
        union all select t.relid from pg_catalog.pg_partition_tree(root.oid) t where root.relkind = 'p'
      ) tree
      join pg_catalog.pg_class c on c.oid = tree.relid
      join pg_catalog.pg_namespace n on n.oid = c.relnamespace
     where rn.nspname = ${schema} and root.relname = ${table} and root.relkind in ('r', 'p')
     order by c.oid = root.oid desc, n.nspname, c.relname`.execute(db);
  if (!rows.length)
    throw usageError(`No table ${keyOf(schema, table)} in this database.`, 'Check the name (schema.table; unqualified means public).');
  return rows;
}

/**
 * The ledger's triggers on one relation, as `verb` (`create trigger` or `create or replace trigger`) statements:
 * `target` and `args` are SQL text, a quoted name and the literal arguments, or format()
 * placeholders (COVER_PARTITIONS_SQL).
 */
function triggerStatements(target: string, args: string, verb: string): { name: string; create: string }[] {
  return [
    ...DML_TRIGGERS.map((t) => ({
      name: t.name,
      create: `${verb} ${t.name} ${t.timing} on ${target} ${t.referencing} for each statement execute function safe_run.${t.fn}(${args})`,
    })),
    {
      name: TRUNCATE_TRIGGER,
      create: `${verb} ${TRUNCATE_TRIGGER} before truncate on ${target} for each statement execute function safe_run.ledger_truncate(${args})`,
    },
  ];
}

// ALWAYS: session_replication_role = replica (what pg_restore --disable-triggers and some tools set) must not silence it.
const enableAlways = (target: string, name: string): string => `alter table ${target} enable always trigger ${name}`;

/**
 * `replace` (PostgreSQL 14+): CREATE OR REPLACE TRIGGER, so that installing again never drops
 * a ledger trigger; a dropped one is recorded as LEDGER OFF (schema-sql.ts), which blame
 * reports for any change around it. Older servers drop and create.
 */
export function tableTriggerSql(
  relation: { schema: string; name: string },
  keepRows: boolean,
  settings: LedgerSettings,
  replace = true,
): string[] {
  const target = quoteTable(relation.schema, relation.name);
  const args = `'${keepRows ? 'keep' : 'count'}', '${settings.keepRowsMax}', '${settings.statementText}'`;
  return [
    ...(replace ? [] : removeTableTriggerSql(relation)),
    ...triggerStatements(target, args, replace ? 'create or replace trigger' : 'create trigger').map((t) => t.create),
    ...LEDGER_TRIGGER_NAMES.map((name) => enableAlways(target, name)),
  ];
}

/**
 * A partition made after `protect` (CREATE TABLE ... PARTITION OF, ATTACH PARTITION: the
 * monthly partition a scheduler adds) gets its parent's ledger triggers, with the parent's
 * arguments, from the DDL event trigger (schema-sql.ts): a parent's statement trigger does
 * not fire for a write straight to a partition, so without them those writes would go
 * unnamed. `rel` is the table the command made or altered; it and its partitions, at any
 * depth, are covered, parents first. A trigger the partition already has is left as it is.
 * The TRUNCATE trigger comes first and ENABLE ALWAYS last: each ALTER TABLE brings this
 * function back (ddl_command_end), and a partition that has it is done.
 */
export const COVER_PARTITIONS_SQL: readonly string[] = [
  `create or replace function safe_run.ledger_cover_partitions(rel oid) returns void
language plpgsql security definer set search_path = pg_catalog, pg_temp as $fn$
declare
  p record;
begin
  loop
    select c.oid, pg_catalog.format('%I.%I', n.nspname, c.relname) as target,
           pg_catalog.array_to_string(array(
             select pg_catalog.quote_literal(a.arg)
               from pg_catalog.unnest((pg_catalog.string_to_array(pg_catalog.encode(parent.tgargs, 'escape'), '\\000'))[1:parent.tgnargs])
                    with ordinality a(arg, i)
              order by a.i), ', ') as args
      into p
      from (select rel as relid union select t.relid::pg_catalog.oid from pg_catalog.pg_partition_tree(rel) t) tree
      join pg_catalog.pg_class c on c.oid = tree.relid and c.relispartition and c.relkind in ('r', 'p')
      join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      join pg_catalog.pg_inherits i on i.inhrelid = c.oid
      join pg_catalog.pg_trigger parent on parent.tgrelid = i.inhparent and parent.tgname = '${TRUNCATE_TRIGGER}'
     where not exists (select from pg_catalog.pg_trigger t where t.tgrelid = c.oid and t.tgname = '${TRUNCATE_TRIGGER}')
     limit 1;
    exit when not found;
${triggerStatements('%1$s', '%2$s', 'create trigger')
  .reverse()
  .map(
    (t) => `    if not exists (select from pg_catalog.pg_trigger t where t.tgrelid = p.oid and t.tgname = '${t.name}') then
      execute pg_catalog.format('${t.create}', p.target, p.args);
    end if;`,
  )
  .join('\n')}
${LEDGER_TRIGGER_NAMES.map((name) => `    execute pg_catalog.format('${enableAlways('%1$s', name)}', p.target);`).join('\n')}
  end loop;
end $fn$`,
  'revoke all on function safe_run.ledger_cover_partitions(oid) from public',
];

export function removeTableTriggerSql(relation: { schema: string; name: string }): string[] {
  return LEDGER_TRIGGER_NAMES.map((name) => `drop trigger if exists ${name} on ${quoteTable(relation.schema, relation.name)}`);
}

function literal(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

export async function planInstall(db: Db, targets: readonly ProtectTarget[], settings: LedgerSettings): Promise<InstallStep[]> {
  const steps: InstallStep[] = [
    {
      what: `create or update the ledger in schema safe_run (statement text: ${settings.statementText}, kept rows per statement: ${settings.keepRowsMax})`,
      // The event triggers go first: a broken one from an older install would fail every DDL below.
      statements: [
        ...dropEventTriggersSql(),
        ...LEDGER_STORAGE_SQL,
        ...LEDGER_FUNCTIONS_SQL,
        ...COVER_PARTITIONS_SQL,
        `insert into safe_run.ledger_settings (statement_text, keep_rows_max) values (${literal(settings.statementText)}, ${settings.keepRowsMax})
  on conflict (one) do update set statement_text = excluded.statement_text, keep_rows_max = excluded.keep_rows_max`,
      ],
    },
    { what: 'install event triggers for DDL and drops on any object (ENABLE ALWAYS)', statements: eventTriggerSql() },
  ];
  const { rows: version } = await sql<{ n: number }>`select pg_catalog.current_setting('server_version_num')::int as n`.execute(db);
  const replace = version[0]!.n >= 140000;
  for (const target of targets) {
    const relations = await resolveRelations(db, target);
    const { schema, table } = target;
    const key = keyOf(schema, table);
    const partitions = relations.length > 1 ? ` and its ${relations.length - 1} partition(s)` : '';
    steps.push({
      what: `protect ${key}${partitions}: statement triggers for INSERT, UPDATE, DELETE, TRUNCATE${target.keepRows ? ', rows kept' : ', rows counted only'}`,
      // The entry first: the DDL trigger takes ledger triggers on a table that is not protected under its name for a rename.
      statements: [
        `insert into safe_run.protected (table_schema, table_name, keep_rows) values (${literal(schema)}, ${literal(table)}, ${target.keepRows})
  on conflict (table_schema, table_name) do update set keep_rows = excluded.keep_rows, installed_at = pg_catalog.now()`,
        ...relations.flatMap((r) => tableTriggerSql(r, target.keepRows, settings, replace)),
      ],
    });
  }
  return steps;
}

/** Removal keeps the ledger's rows: they are evidence. With no table named, everything is removed, event triggers included. */
export async function planRemove(db: Db, names: readonly TableName[], all: boolean): Promise<InstallStep[]> {
  const steps: InstallStep[] = [];
  for (const name of names) {
    const { schema, table } = name;
    // A dropped table has no triggers left to drop; only its entry goes.
    const relations = await resolveRelations(db, name).catch(() => []);
    steps.push({
      what: `unprotect ${keyOf(schema, table)}: drop its ledger triggers (its recorded statements stay)`,
      statements: [
        ...relations.flatMap(removeTableTriggerSql),
        `delete from safe_run.protected where table_schema = ${literal(schema)} and table_name = ${literal(table)}`,
      ],
    });
  }
  if (all) steps.push({ what: 'drop the ledger event triggers (the ledger and its rows stay)', statements: dropEventTriggersSql() });
  return steps;
}

/** Event triggers and SECURITY DEFINER functions that record every role's writes need a superuser. */
export async function assertSuperuser(db: Db): Promise<void> {
  const { rows } = await sql<{ name: string; superuser: boolean }>`
    select current_user::text as name, r.rolsuper as superuser from pg_catalog.pg_roles r where r.rolname = current_user`.execute(db);
  const me = rows[0];
  if (me?.superuser) return;
  throw new SafeRunError(
    `protect needs a superuser: role "${me?.name ?? '?'}" may not create event triggers, which record DDL and drops.`,
    ExitCode.usage,
    'Run it once as a superuser, e.g. `safe-run protect users --db postgres://postgres@HOST/DB` (the password from PGPASSWORD or ~/.pgpass).',
  );
}

const ATTEMPTS = 5;

export async function applySteps(db: Db, steps: readonly InstallStep[], lockTimeoutMs: number, log: Logger): Promise<void> {
  for (const step of steps) {
    for (let attempt = 1; ; attempt++) {
      try {
        await db.transaction().execute(async (trx) => {
          await sql`select pg_catalog.set_config('lock_timeout', ${`${lockTimeoutMs}ms`}, true)`.execute(trx);
          for (const statement of step.statements) await sql.raw(statement).execute(trx);
        });
        break;
      } catch (error) {
        if ((error as { code?: string }).code !== LOCK_NOT_AVAILABLE || attempt >= ATTEMPTS) throw lockError(error, step, attempt);
        log.warn('a table is busy; trying again', { step: step.what, attempt });
        await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
      }
    }
  }
}

function lockError(error: unknown, step: InstallStep, attempts: number): unknown {
  if ((error as { code?: string }).code !== LOCK_NOT_AVAILABLE) return error;
  return new SafeRunError(
    `Could not take the lock to ${step.what} after ${attempts} attempts: another session holds the table.`,
    ExitCode.locked,
    "Find the holder with `select pid, query from pg_stat_activity where wait_event_type is null and state <> 'idle'`, or retry when the table is quieter.",
    { cause: error },
  );
}
