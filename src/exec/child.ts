import { execa } from 'execa';
import { constants } from 'node:os';
import type { Interrupt } from '../run/interrupt.js';

export interface ChildOutcome {
  /** What a shell would report: the exit code, 128 + n for a signal, 127/126 when it could not start. */
  readonly exitCode: number;
  readonly signal: string | null;
  readonly durationMs: number;
  /** Set when the program could not be started at all. */
  readonly error: string | null;
}

/**
 * Runs the wrapped program with our stdin, stdout and stderr (it may prompt, and its output
 * is the operator's), without a shell (argv is passed as given; nothing is re-parsed), and
 * with our environment, which is what the operator meant it to see.
 *
 * With --json our stdout must hold one JSON document, so the child's stdout goes to stderr.
 *
 * A SIGINT/SIGTERM that reaches safe-run is passed on to the child, and safe-run waits for
 * it to end: the post-snapshot and the outcome must still be recorded.
 */
export async function runChild(
  file: string,
  args: readonly string[],
  interrupt: Interrupt,
  stdoutToStderr: boolean,
): Promise<ChildOutcome> {
  const started = performance.now();
  const child = execa(file, args, {
    stdin: 'inherit',
    stdout: stdoutToStderr ? 2 : 'inherit',
    stderr: 'inherit',
    reject: false,
    shell: false,
  });
  interrupt.onInterrupt(() => {
    child.kill(interrupt.signal ?? 'SIGTERM');
  });
  const result = await child;
  const durationMs = Math.round(performance.now() - started);
  const signal = result.signal ?? null;
  if (typeof result.exitCode === 'number') return { exitCode: result.exitCode, signal: null, durationMs, error: null };
  if (signal)
    return { exitCode: 128 + (constants.signals[signal as keyof typeof constants.signals] ?? 0), signal, durationMs, error: null };
  const code = (result as { code?: string }).code;
  return {
    exitCode: code === 'ENOENT' ? 127 : code === 'EACCES' ? 126 : 1,
    signal: null,
    durationMs,
    error: result.shortMessage ?? result.message ?? 'could not start',
  };
}
