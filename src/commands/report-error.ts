import { ExitCode, ExitWith, SafeRunError, errorMessage } from '../errors.js';

export interface ReportOptions {
  readonly json: boolean;
  readonly verbose: boolean;
  /** The command that failed ("run" for a script), when known: it decides what can be said to be safe. */
  readonly command?: string | undefined;
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
  const safe = known ? whatIsSafe(options.command, exitCode) : null;
  if (safe) process.stderr.write(`  safe: ${safe}\n`);
  if (known?.hint) process.stderr.write(`  next: ${known.hint}\n`);
  if (options.verbose && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
  return exitCode;
}

/** Commands that read the database and the evidence and write neither (report writes only its -o file). */
const READ_ONLY = new Set(['list', 'verify', 'log', 'show', 'blame', 'report', 'check', 'doctor', 'backups', 'completion']);

/** Commands whose changes go through a guarded run, which commits only after its signed outcome is durable. */
const GUARDED = new Set(['run', 'undo', 'recover']);

/**
 * The second of the three things a half-awake operator needs from an error (what happened,
 * what is safe, what next), said only where it is certain. A guarded run commits at step 11
 * of the pipeline and only exits 5 or 70 after that (the run.post append), so a usage error,
 * a failed backup or a held lock always means nothing was committed; exit 5 and 70 say nothing.
 */
export function whatIsSafe(command: string | undefined, exitCode: number): string | null {
  if (command && READ_ONLY.has(command)) return `nothing was changed: \`${command}\` only reads the database and the evidence.`;
  const beforeCommit = exitCode === ExitCode.usage || exitCode === ExitCode.backupFailed || exitCode === ExitCode.locked;
  if (command && GUARDED.has(command) && beforeCommit) return 'nothing was committed: the database is as it was before this command.';
  return null;
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
