import { ExitCode, ExitWith, SafeRunError } from '../errors.js';

/**
 * The one top-level error handler: one readable message (and the next step) on stderr,
 * a JSON error on stdout with --json, a stack only with --verbose. Returns the exit code.
 */
export function reportError(error: unknown, options: { json: boolean; verbose: boolean }): number {
  if (error instanceof ExitWith) return error.exitCode;
  const known = error instanceof SafeRunError ? error : null;
  const exitCode = known?.exitCode ?? ExitCode.scriptFailed;
  const message = known ? known.message : `Unexpected error: ${(error as Error)?.message ?? String(error)}`;
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ error: { message, hint: known?.hint ?? null, exitCode } }, null, 2)}\n`);
  }
  process.stderr.write(`safe-run: ${message}\n`);
  if (known?.hint) process.stderr.write(`  next: ${known.hint}\n`);
  if (options.verbose && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
  else if (!known) process.stderr.write('  (run again with --verbose for the stack trace)\n');
  return exitCode;
}
