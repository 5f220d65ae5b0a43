import { sql } from 'kysely';
import { CATALOG_SEARCH_PATH, type Db, onlyRow } from '../db/connection.js';
import type { Violation } from '../records/index.js';
import { GUARDED_SETTINGS } from './policy-rules.js';

/**
 * The session settings that decide whether the guard can be trusted (GUARDED_SETTINGS, the
 * same list the statement policy refuses to SET). The runner sets them
 * on the script's transaction, reads them back as the baseline, and compares after the
 * script: a script that turned counting off, disabled triggers and cascades
 * (session_replication_role) or lifted a timeout and left it so is a violation. A setting
 * switched off and back on between two statements is invisible here; only a role that may
 * not change it stops that, hence `trust` in the outcome.
 */

export type SettingValues = Readonly<Record<string, string | null>>;

export interface RunnerSettings {
  readonly applicationName: string;
  readonly statementTimeoutMs: number;
  readonly lockTimeoutMs: number;
}

/**
 * How often the server checks that the runner is still connected while a query runs: a
 * runner killed mid-query must not leave the script's statement running after its lock
 * is gone.
 */
const CONNECTION_CHECK_INTERVAL = '5s';

export async function applyRunnerSettings(trx: Db, settings: RunnerSettings): Promise<void> {
  await sql`select pg_catalog.set_config('application_name', ${settings.applicationName}, true),
                   pg_catalog.set_config('statement_timeout', ${`${settings.statementTimeoutMs}ms`}, true),
                   pg_catalog.set_config('lock_timeout', ${`${settings.lockTimeoutMs}ms`}, true),
                   pg_catalog.set_config('client_connection_check_interval', ${CONNECTION_CHECK_INTERVAL}, true)`.execute(trx);
}

/**
 * Before the runner's own statements run in the script's transaction: names resolve in
 * pg_catalog first. The path also shapes what pg_get_constraintdef and friends print, so
 * the baseline is read under it too and the script's own path is given back for its run.
 * Returns the path it replaced.
 */
export async function useCatalogSearchPath(trx: Db): Promise<string> {
  const { rows } = await sql<{ previous: string }>`
    select pg_catalog.current_setting('search_path') as previous, pg_catalog.set_config('search_path', ${CATALOG_SEARCH_PATH}, true)`.execute(
    trx,
  );
  return onlyRow(rows).previous;
}

export async function restoreSearchPath(trx: Db, path: string): Promise<void> {
  await sql`select pg_catalog.set_config('search_path', ${path}, true)`.execute(trx);
}

/** current_user and session_user are SQL keywords, not functions: nothing can shadow them. */
export async function readGuardedSettings(trx: Db): Promise<SettingValues> {
  const columns = GUARDED_SETTINGS.map((name, i) => sql`pg_catalog.current_setting(${name}, true) as ${sql.id(`s${i}`)}`);
  const { rows } = await sql<Record<string, string | null>>`
    select ${sql.join(columns)}, current_user::text as current_user, session_user::text as session_user`.execute(trx);
  const row = onlyRow(rows);
  return {
    ...Object.fromEntries(GUARDED_SETTINGS.map((name, i) => [name, row[`s${i}`] ?? null])),
    current_user: row.current_user ?? null,
    session_user: row.session_user ?? null,
  };
}

export function settingViolations(baseline: SettingValues, after: SettingValues): Violation[] {
  return Object.keys(baseline)
    .filter((name) => baseline[name] !== after[name])
    .map((name) => ({
      object: name,
      rule: 'setting-changed' as const,
      detail: `the script changed ${name} from ${JSON.stringify(baseline[name])} to ${JSON.stringify(after[name])}; safe-run sets it for the run and a script may not change it`,
    }));
}

/**
 * Whether the script's session could have switched the counters off and on again unseen:
 * only a superuser (or a member of a superuser role, which can SET ROLE to it) may set
 * track_counts or session_replication_role.
 */
export async function readTrust(trx: Db): Promise<'role' | 'superuser'> {
  const { rows } = await sql<{ privileged: boolean }>`
    select exists (
      select 1 from pg_catalog.pg_roles s
       where s.rolsuper and pg_catalog.pg_has_role(session_user, s.oid, 'MEMBER')
    ) as privileged`.execute(trx);
  return rows[0]?.privileged ? 'superuser' : 'role';
}
