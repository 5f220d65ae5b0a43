import type { BackupScope } from './scope.js';

export interface DumpTable {
  readonly schema: string;
  readonly name: string;
}

export interface PgDumpArgsOptions {
  readonly scope: Exclude<BackupScope, 'none'>;
  readonly tables: readonly DumpTable[];
  /** Null only outside a guarded run: then pg_dump takes its own snapshot. */
  readonly snapshotId: string | null;
  readonly compress: number;
  /** More than 1 switches to the directory format, the only one pg_dump writes in parallel. */
  readonly jobs: number;
  readonly lockWaitTimeoutMs: number;
  /**
   * Where pg_dump writes: the directory it creates (directory format) or the file (custom
   * format). A custom archive without one goes to stdout.
   */
  readonly output?: string;
  /** `--verbose`, whose stderr lines the progress bar reads (dump-progress.ts). */
  readonly verbose?: boolean;
}

/**
 * pg_dump's argv, built in one place so a test can hold it to the rule that nothing secret
 * is in it: the connection comes from PG* variables (child-env.ts), argv has no URL, host,
 * user or password at all.
 */
export function pgDumpArgs(options: PgDumpArgsOptions): string[] {
  const parallel = options.jobs > 1;
  if (parallel && !options.output) throw new Error('pgDumpArgs: a parallel dump needs a directory');
  const args = parallel ? ['--format=directory', `--jobs=${options.jobs}`] : ['--format=custom'];
  if (options.output) args.push(`--file=${options.output}`);
  args.push(`--compress=${options.compress}`);
  if (options.snapshotId) args.push(`--snapshot=${options.snapshotId}`);
  // pg_dump takes ACCESS SHARE locks before reading; waiting forever behind someone's
  // ALTER TABLE would stall the run with nothing to show for it.
  args.push(`--lock-wait-timeout=${options.lockWaitTimeoutMs}`, '--no-password');
  if (options.verbose) args.push('--verbose');
  if (options.scope === 'full') {
    args.push('--exclude-schema=safe_run');
  } else {
    // A declared table that no longer matches must fail the backup, not shrink it silently.
    args.push('--strict-names', ...options.tables.map((t) => `--table=${tablePattern(t)}`));
  }
  return args;
}

/**
 * A pg_dump pattern that matches exactly one table. Inside double quotes pg_dump takes
 * every character literally: case is kept, `.` does not separate, and `*`, `?` and the
 * regular-expression characters lose their meaning. A double quote is written twice.
 */
export function tablePattern(table: DumpTable): string {
  return `${quotePatternPart(table.schema)}.${quotePatternPart(table.name)}`;
}

function quotePatternPart(part: string): string {
  return `"${part.replace(/"/g, '""')}"`;
}
