import { ExitCode, ExitWith, SafeRunError, errorMessage } from '../errors.js';

export interface ReportOptions {
  readonly json: boolean;
  readonly verbose: boolean;
}

/**
 * The one top-level error handler: one readable message (and the next step) on stderr,
 * a JSON error on stdout with --json, a stack only with --verbose. Returns the exit code.
 *
 * Anything that is not a SafeRunError is a bug in safe-run and exits 70 (EX_SOFTWARE): exit 1
 * is the contract's "the script failed and was rolled back", and a crash inside `check` or
 * `verify` must never read as that.
 */
export function reportError(error: unknown, options: ReportOptions): number {
  if (error instanceof ExitWith) return error.exitCode;
  const known = error instanceof SafeRunError ? error : null;
  const exitCode = known?.exitCode ?? ExitCode.internal;
  const message = known ? known.message : internalMessage(error, options.verbose);
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ error: { message, hint: known?.hint ?? null, exitCode } }, null, 2)}\n`);
  }
  process.stderr.write(`safe-run: ${message}\n`);
  if (known?.hint) process.stderr.write(`  next: ${known.hint}\n`);
  if (options.verbose && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
  return exitCode;
}

function internalMessage(error: unknown, verbose: boolean): string {
  // One line, whatever the thrown value carried: the stack (with --verbose) is where the detail goes.
  const text =
    errorMessage(error)
      .replace(/\s*\n\s*/g, ' ')
      .trim()
      .replace(/\.$/, '') || 'no message';
  const base = `internal error: ${text}. This is a bug in safe-run`;
  return verbose ? base : `${base}; run again with --verbose for the stack trace`;
}
