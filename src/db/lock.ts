import { sql } from 'kysely';
import { ExitCode, SafeRunError, errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Db } from './connection.js';
import type { PgStatActivity } from './schema.js';

/**
 * One guarded run per database at a time. A session-level advisory lock (not a transaction
 * lock) so it spans the snapshot, the backup and the script's transaction. Advisory locks
 * are scoped to the current database, so a constant key is per-database already.
 */
const LOCK_CLASS = 0x5afe; // "safe"
const LOCK_OBJECT = 1;

export interface LockHolder {
  readonly pid: number;
  readonly applicationName: string;
  readonly backendStart: string;
  readonly clientAddr: string | null;
}

/** `conn` must be a single dedicated connection (see withClient): the lock lives with that session. */
export async function withAdvisoryLock<T>(conn: Db, log: Logger, fn: () => Promise<T>): Promise<T> {
  const { rows } = await sql<{ ok: boolean }>`select pg_try_advisory_lock(${LOCK_CLASS}, ${LOCK_OBJECT}) as ok`.execute(conn);
  if (!rows[0]?.ok) {
    const holder = await readLockHolder(conn);
    throw new SafeRunError(
      describeHolder(holder),
      ExitCode.locked,
      'Wait for that run to finish (`safe-run log` shows it), or stop it if it is stuck.',
    );
  }
  try {
    return await fn();
  } finally {
    try {
      await sql`select pg_advisory_unlock(${LOCK_CLASS}, ${LOCK_OBJECT})`.execute(conn);
    } catch (error) {
      // The session ending releases it anyway; never hide the run's own error behind this one.
      log.warn('could not release the run lock; it is released when the connection closes', { error: errorMessage(error) });
    }
  }
}

async function readLockHolder(conn: Db): Promise<LockHolder | null> {
  const { rows } = await sql<Pick<PgStatActivity, 'pid' | 'application_name' | 'backend_start' | 'client_addr'>>`
    select a.pid, a.application_name, a.backend_start, a.client_addr::text as client_addr
    from pg_locks l join pg_stat_activity a on a.pid = l.pid
    where l.locktype = 'advisory' and l.granted and l.classid = ${LOCK_CLASS} and l.objid = ${LOCK_OBJECT}
      and l.database = (select oid from pg_database where datname = current_database())
    limit 1`.execute(conn);
  const row = rows[0];
  return row
    ? { pid: row.pid, applicationName: row.application_name, backendStart: row.backend_start.toISOString(), clientAddr: row.client_addr }
    : null;
}

/** The holder's application_name is `safe-run:<script>:<runId>` (set by the run). */
function describeHolder(holder: LockHolder | null): string {
  if (!holder) return 'Another guarded run holds the lock on this database.';
  const [, script, runId] = holder.applicationName.split(':');
  const what = script ? `script ${script}${runId ? ` (run ${runId})` : ''}` : `"${holder.applicationName || 'unknown client'}"`;
  return `Another guarded run holds the lock on this database: ${what}, pid ${holder.pid}, started ${holder.backendStart}.`;
}
