/**
 * How every comparison is timed: the two sides alternate (A B A B …) in one process on the
 * same data, so cache warmth, autovacuum and CPU frequency drift hit both sides alike, and
 * the median of the rounds is reported. One untimed warm-up of each side comes first.
 */

/** Progress goes to stderr: with --json, stdout holds one document and nothing else. */
export function progress(message: string): void {
  process.stderr.write(`${message}\n`);
}

export async function timeMs(fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

export function median(values: readonly number[]): number {
  if (!values.length) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export interface Side {
  readonly name: string;
  /** Returns the time to count, in ms (a side may leave set-up out of its own figure). */
  run(): Promise<number>;
}

export interface SideSamples {
  readonly name: string;
  readonly samplesMs: number[];
  readonly medianMs: number;
}

export interface AlternateOptions {
  readonly rounds: number;
  readonly warmup?: boolean;
  /** Untimed work before every run of a side, e.g. putting back what the last run deleted. */
  readonly before?: () => Promise<void>;
  readonly label: string;
}

export async function alternate(sides: readonly Side[], options: AlternateOptions): Promise<SideSamples[]> {
  const samples = sides.map(() => [] as number[]);
  const once = async (i: number): Promise<number> => {
    if (options.before) await options.before();
    return sides[i]!.run();
  };
  if (options.warmup !== false) for (let i = 0; i < sides.length; i++) await once(i);
  for (let round = 0; round < options.rounds; round++) {
    // Rotate the starting side each round, so no side always runs right after the other.
    for (let k = 0; k < sides.length; k++) {
      const i = (round + k) % sides.length;
      samples[i]!.push(await once(i));
    }
    progress(
      `  ${options.label}: round ${round + 1}/${options.rounds}: ${sides.map((s, i) => `${s.name} ${samples[i]!.at(-1)!.toFixed(0)} ms`).join(', ')}`,
    );
  }
  return sides.map((side, i) => ({ name: side.name, samplesMs: samples[i]!, medianMs: median(samples[i]!) }));
}

export function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
