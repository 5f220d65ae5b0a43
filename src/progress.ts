import { createRequire } from 'node:module';
import type { MultiBar } from 'cli-progress';

/**
 * Progress for a person watching a terminal: the backup, the exact counts, the script's
 * elapsed time. Library code gets a `Progress` and never asks whether anyone is watching;
 * the command layer decides (createProgress), and on a pipe, in cron or with --json every
 * call is a no-op.
 */
export interface Progress {
  /** Whether anything is drawn: pg_dump gets --verbose only when its lines are read for a bar. */
  readonly active: boolean;
  /** A bar with a total (tables), or a running clock when total is null. */
  start(label: string, total: number | null): ProgressTask;
}

export interface ProgressTask {
  update(done: number, detail?: string): void;
  setTotal(total: number): void;
  stop(): void;
}

const idleTask: ProgressTask = { update() {}, setTotal() {}, stop() {} };
export const noProgress: Progress = { active: false, start: () => idleTask };

export interface ProgressOptions {
  readonly json: boolean;
  /** Default process.stderr; a test passes a stream of its own. */
  readonly stream?: NodeJS.WriteStream;
}

const require = createRequire(import.meta.url);

/** The bar being drawn, if any: log lines go above it instead of through it. */
let drawing: MultiBar | null = null;

/**
 * Writes a log line above the bar being drawn. A line written straight to the terminal would
 * land on the bar's line, and the bar's redraw would then overwrite or scramble it. False
 * when no bar is drawn: the caller writes the line itself.
 */
export function writeAboveProgress(line: string): boolean {
  if (!drawing) return false;
  drawing.log(`${line}\n`);
  return true;
}

/** Bars on stderr when it is a terminal and stdout is not a --json document; no-ops otherwise. */
export function createProgress(options: ProgressOptions): Progress {
  const stream = options.stream ?? process.stderr;
  if (options.json || stream.isTTY !== true) return noProgress;
  // Required when a bar is first drawn: a command on a pipe never loads it.
  const { MultiBar: Bars } = require('cli-progress') as typeof import('cli-progress');
  return {
    active: true,
    start(label, total) {
      const counted = total !== null;
      // A MultiBar of one bar: unlike SingleBar it moves relative to where it drew and has a
      // log buffer, so lines logged while it runs (the script's own) stay whole and above it.
      const bars: MultiBar = new Bars({
        stream,
        format: counted ? `${label} [{bar}] {value}/{total} {detail} {duration_formatted}` : `${label} {detail} {duration_formatted}`,
        barsize: 24,
        hideCursor: true,
        clearOnComplete: true,
        // Redrawn on a timer as well, so the clock moves while pg_dump waits on a lock.
        fps: 5,
        etaBuffer: 20,
      });
      const bar = bars.create(total ?? 0, 0, { detail: '' });
      drawing = bars;
      let value = 0;
      return {
        update(done, detail) {
          value = done;
          bar.update(done, { detail: detail ?? '' });
        },
        setTotal(n) {
          bar.setTotal(n);
          bar.update(value);
        },
        stop() {
          if (drawing === bars) drawing = null;
          bars.update(); // flushes the log lines still buffered: stop() alone would drop them
          bars.stop();
        },
      };
    },
  };
}
