/**
 * The contract's exit codes (SPEC "Exit codes"). Every failure that reaches the user is a
 * SafeRunError carrying one of these, so the top-level handler in program.ts is the only place
 * that turns an error into a process exit status.
 */
export const ExitCode = {
  ok: 0,
  scriptFailed: 1,
  usage: 2,
  guardViolation: 3,
  backupFailed: 4,
  auditFailed: 5,
  locked: 6,
  drift: 10,
  /** sysexits' EX_SOFTWARE: an error safe-run did not expect, i.e. a bug in safe-run, never the script's failure. */
  internal: 70,
  interrupted: 130,
} as const;

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export class SafeRunError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
    /** The next step for the operator, printed under the message. */
    readonly hint?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'SafeRunError';
  }
}

export const usageError = (message: string, hint?: string, cause?: unknown): SafeRunError =>
  new SafeRunError(message, ExitCode.usage, hint, { cause });

/** The `code` of a Node or PostgreSQL error (ENOENT, 42P01), whatever shape the thrown value has. */
export function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined;
  return typeof error.code === 'string' ? error.code : undefined;
}

/** PostgreSQL's lock_not_available: a lock_timeout (or NOWAIT) ran out. */
export const LOCK_NOT_AVAILABLE = '55P03';

/** A message for any thrown value, without a stack. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/**
 * Thrown by a command that has already printed its result and only needs the process to
 * end with a non-zero code (a guard violation, drift found by `check`, a bad `verify`).
 */
export class ExitWith extends Error {
  // A number, not only ExitCode: `exec` passes the wrapped command's own exit status through.
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
    this.name = 'ExitWith';
  }
}
