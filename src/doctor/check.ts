import { ExitCode, SafeRunError, errorMessage } from '../errors.js';

/**
 * One line of `safe-run doctor`. A failed check carries the contract's exit code for its
 * kind of problem, so the command can exit with the most severe one.
 */
export interface DoctorCheck {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
  /** The next step for the operator; always set on a failure or a warning. */
  readonly hint?: string;
  /** OK, but close to a problem (low disk space). Never changes the exit code. */
  readonly warning?: boolean;
  /** Only on a failure: 2 configuration, 4 pg_dump/pg_restore, 5 evidence or audit log. */
  readonly exitCode?: ExitCode;
}

export const pass = (name: string, detail: string): DoctorCheck => ({ name, ok: true, detail });

export const warn = (name: string, detail: string, hint: string): DoctorCheck => ({ name, ok: true, detail, hint, warning: true });

export const fail = (name: string, detail: string, hint: string, exitCode: ExitCode): DoctorCheck => ({
  name,
  ok: false,
  detail,
  hint,
  exitCode,
});

/** A thrown SafeRunError already says what is wrong and what to do; keep both. */
export function failFrom(name: string, error: unknown, exitCode: ExitCode, fallbackHint: string): DoctorCheck {
  if (error instanceof SafeRunError) return fail(name, error.message, error.hint ?? fallbackHint, exitCode);
  return fail(name, errorMessage(error), fallbackHint, exitCode);
}

/**
 * When several checks fail, the highest code wins: 5 (the evidence cannot be written or the
 * log does not verify: possible tampering, which must never hide behind a typo) over
 * 4 (no usable pg_dump/pg_restore: no run can take its backup) over 2 (configuration).
 */
export const SEVERITY_ORDER: readonly ExitCode[] = [ExitCode.auditFailed, ExitCode.backupFailed, ExitCode.usage];

export function doctorExitCode(checks: readonly DoctorCheck[]): ExitCode {
  const codes = new Set(checks.filter((c) => !c.ok).map((c) => c.exitCode ?? ExitCode.usage));
  return SEVERITY_ORDER.find((code) => codes.has(code)) ?? (codes.size ? ExitCode.usage : ExitCode.ok);
}
