import lockfile from 'proper-lockfile';
import { ExitCode, SafeRunError, errorCode } from '../errors.js';
import type { Logger } from '../logger.js';
import { auditFailure } from './jsonl.js';

/**
 * Appends from separate processes (a cron `snapshot` and a guarded run) are serialized by
 * a lock directory next to the log, so each one reads the head and writes the next entry
 * with nobody in between: one linear chain, no fork, no lost entry.
 */

// A holder refreshes the lock's mtime every stale/2; one that died is taken over after `stale`.
const STALE_MS = 10_000;
// Each append holds the lock for a few milliseconds, so a crowd of writers clears quickly;
// the budget (about 30 s) only runs out when a holder is stuck.
const RETRIES = { retries: 300, factor: 1.2, minTimeout: 5, maxTimeout: 100, randomize: true };

export async function withAuditLock<T>(logFile: string, log: Logger, fn: () => Promise<T>): Promise<T> {
  const lockPath = `${logFile}.lock`;
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(logFile, {
      realpath: false,
      lockfilePath: lockPath,
      stale: STALE_MS,
      retries: RETRIES,
      // The default throws from a timer and kills the process; losing the lock mid-append
      // only happens when this process stalled for longer than `stale`, so warn instead.
      onCompromised: (error) =>
        log.warn('The audit log lock was lost while held; run `safe-run verify`', { lock: lockPath, error: error.message }),
    });
  } catch (error) {
    if (errorCode(error) === 'ELOCKED') {
      throw new SafeRunError(
        `Another process held the audit log lock ${lockPath} for too long.`,
        ExitCode.auditFailed,
        `Retry; if no safe-run process is running, the lock is left over: remove it with \`rmdir ${lockPath}\`.`,
        { cause: error },
      );
    }
    throw auditFailure(`Cannot lock the audit log ${logFile}`, error);
  }
  try {
    return await fn();
  } finally {
    await release().catch((error: Error) => log.warn('Could not release the audit log lock', { lock: lockPath, error: error.message }));
  }
}
