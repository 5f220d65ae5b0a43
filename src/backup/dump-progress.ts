import { formatBytes } from '../log-line.js';
import type { Progress, ProgressTask } from '../progress.js';

/**
 * What `pg_dump --verbose` says on stderr, read for progress: a table's data starts with
 * `pg_dump: dumping contents of table "public.users"`; a parallel dump also reports
 * `pg_dump: finished item 3379 TABLE DATA users` when a worker is done with it.
 */
export type DumpEvent = { readonly kind: 'table-started'; readonly table: string } | { readonly kind: 'table-finished' };

export function parseDumpLine(line: string): DumpEvent | null {
  const started = /^pg_dump: dumping contents of table "(.+)"\s*$/.exec(line);
  if (started) return { kind: 'table-started', table: started[1]! };
  if (/^pg_dump: finished item \d+ TABLE DATA /.test(line)) return { kind: 'table-finished' };
  return null;
}

/** pg_dump's own complaints, without the --verbose chatter, for the failure message. */
export function dumpErrors(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l.trim());
  const errors = lines.filter((l) => /^pg_dump: (error|detail|hint|warning):/.test(l));
  return (errors.length ? errors : lines).join('\n');
}

/**
 * Tables done of the tables in scope, bytes written, elapsed. Sequentially a table is done
 * when the next one starts; in parallel, when a worker says it finished.
 */
export class DumpProgress {
  private started = 0;
  private finished = 0;
  private current = '';
  private bytes = 0;
  private readonly task: ProgressTask;
  private pending = '';

  constructor(progress: Progress, total: number) {
    this.task = progress.start('backup', total);
  }

  /** Feed raw stderr chunks; lines may arrive split. */
  stderr(chunk: Buffer | string): void {
    const text = this.pending + String(chunk);
    const lines = text.split('\n');
    this.pending = lines.pop() ?? '';
    for (const line of lines) {
      const event = parseDumpLine(line);
      if (!event) continue;
      if (event.kind === 'table-started') {
        this.started++;
        this.current = event.table;
      } else {
        this.finished++;
      }
    }
    this.draw();
  }

  written(bytes: number): void {
    this.bytes = bytes;
    this.draw();
  }

  /** The count shown: finished items when pg_dump reports them, else the tables before the current one. */
  get tablesDone(): number {
    return this.finished > 0 ? this.finished : Math.max(0, this.started - 1);
  }

  stop(): void {
    this.task.stop();
  }

  private draw(): void {
    const size = this.bytes ? ` ${formatBytes(this.bytes)}` : '';
    this.task.update(this.tablesDone, `${this.current}${size}`);
  }
}
