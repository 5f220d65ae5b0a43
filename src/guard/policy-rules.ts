/**
 * What the statement policy refuses, and the words an operator reads when it does. The lists
 * are data so that the integrator's end-of-script checks and the docs use the same ones.
 */

/**
 * Settings a script must not change: they either hide what the script did
 * (`session_replication_role` skips triggers and foreign keys, `track_counts` and
 * `stats_fetch_consistency` blind the counters the guards measure with), lift the runner's
 * limits (the timeouts), or change who the script is (`role`, `session_authorization`) or
 * whether the run can write its own records (`*_read_only`).
 */
export const GUARDED_SETTINGS: readonly string[] = [
  'session_replication_role',
  'track_counts',
  'stats_fetch_consistency',
  'statement_timeout',
  'lock_timeout',
  'idle_in_transaction_session_timeout',
  'client_connection_check_interval',
  'default_transaction_read_only',
  'transaction_read_only',
  'role',
  'session_authorization',
];

export type PolicyRule =
  | 'transaction-control'
  | 'role-change'
  | 'guarded-setting'
  | 'set-config'
  | 'outside-transaction'
  | 'other-sessions'
  | 'server-config'
  | 'statistics'
  | 'server-files'
  | 'run-lock'
  | 'unchecked-body'
  | 'evidence-schema'
  | 'unchecked-dynamic';

/** Why each rule exists and what to do instead: the second half of every refusal. */
export const POLICY_ADVICE: Readonly<Record<PolicyRule, string>> = {
  'transaction-control':
    'safe-run runs the whole script in one transaction and commits it itself when the guards pass. Remove it; ' +
    'to undo part of the work, use SAVEPOINT and ROLLBACK TO SAVEPOINT.',
  'role-change':
    'the run is recorded under the role it started as, and the guards assume that role. Connect as the role ' +
    'you need (config "scriptRole"), not switch inside the script.',
  'guarded-setting':
    'safe-run sets it for the run and relies on it to measure and limit the script. Remove it; change the ' +
    'limits in the config ("statementTimeout", "lockTimeout") if they are too tight.',
  'set-config':
    'set_config can change a guarded setting, and a name computed at run time cannot be checked. Call it with ' +
    'a literal name that is not a guarded setting, or use SET LOCAL.',
  'outside-transaction':
    'it does its work on another connection, outside the guarded transaction: it would commit even if the guards ' +
    'roll the run back, and no guard would see it. Do that work in the script itself.',
  'other-sessions':
    'it acts on other sessions, which the run does not own and the audit log cannot attribute. Do it by hand, ' + 'outside a guarded run.',
  'server-config': 'it changes the server, not the data, and cannot be rolled back with the run. Ask a DBA to do it outside safe-run.',
  statistics:
    'safe-run and `safe-run check` count every change with these statistics; resetting them would hide what ' +
    'the script (or anyone) did. There is no safe replacement inside a guarded run.',
  'server-files':
    'it reads or writes files or programs on the database server, outside the transaction and the backup. ' +
    'Use COPY ... FROM STDIN / TO STDOUT (psql \\copy) or load the data with a TypeScript script.',
  'run-lock':
    'releasing session advisory locks can release the lock that keeps a second guarded run out of this ' +
    'database. Use pg_advisory_xact_lock, which ends with the transaction.',
  'evidence-schema':
    "the safe_run schema holds safe-run's own evidence (the chain-head anchor); no script may read-lock, write " +
    'or change it. Remove the statement.',
  'unchecked-dynamic':
    'a script running as a superuser could switch counting or triggers off, or reach outside the transaction, ' +
    'with SQL computed at run time that safe-run cannot read. Write the statements out literally, or set a ' +
    'non-superuser "scriptRole" (then the server itself refuses what only a superuser may do).',
  'unchecked-body':
    'safe-run must read every statement a script can run, and it cannot read this body. Write it in SQL or ' +
    'PL/pgSQL that PostgreSQL accepts, or create the function in a migration.',
};

/** A group of functions refused for one reason; a name matches exactly or by prefix. */
interface FunctionGroup {
  readonly rule: PolicyRule;
  readonly names: readonly string[];
  readonly prefixes: readonly string[];
}

export const REFUSED_FUNCTIONS: readonly FunctionGroup[] = [
  // dblink and pg_background open their own connection or worker: their work commits on its own.
  { rule: 'outside-transaction', names: [], prefixes: ['dblink', 'pg_background_'] },
  { rule: 'other-sessions', names: ['pg_terminate_backend', 'pg_cancel_backend'], prefixes: [] },
  // Not transactional: a reload, a log rotation, a promotion or a replication slot survives ROLLBACK.
  {
    rule: 'server-config',
    names: ['pg_reload_conf', 'pg_rotate_logfile', 'pg_promote', 'pg_drop_replication_slot'],
    prefixes: ['pg_create_logical_replication_slot', 'pg_create_physical_replication_slot', 'pg_copy_'],
  },
  { rule: 'statistics', names: ['pg_stat_clear_snapshot'], prefixes: ['pg_stat_reset'] },
  // lo_import/lo_export are the server-side forms (the client-side ones are libpq calls, not SQL);
  // pg_file_* is adminpack's writer family.
  { rule: 'server-files', names: ['lo_import', 'lo_export'], prefixes: ['pg_file_'] },
  { rule: 'run-lock', names: ['pg_advisory_unlock', 'pg_advisory_unlock_shared', 'pg_advisory_unlock_all'], prefixes: [] },
];

/** The rule a call to `name` (unqualified, lower case) breaks, if any. */
export function refusedFunction(name: string): PolicyRule | undefined {
  const group = REFUSED_FUNCTIONS.find((g) => g.names.includes(name) || g.prefixes.some((p) => name.startsWith(p)));
  return group?.rule;
}

export const isGuardedSetting = (name: string): boolean => GUARDED_SETTINGS.includes(name.toLowerCase());
