import type { Argv } from 'yargs';

/**
 * The options every command takes (SPEC "Commands"). Kept apart from context.ts, which loads
 * the config, the database driver and the audit log: `--help` and `--version` need only this.
 */
export interface GlobalArgs {
  readonly db?: string;
  readonly config?: string;
  readonly json?: boolean;
  readonly verbose?: boolean;
  readonly 'log-format'?: LogFormat;
}

export const LOG_FORMATS = ['human', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export function globalOptions<T>(yargs: Argv<T>): Argv<T & GlobalArgs> {
  return yargs
    .option('db', { type: 'string', describe: 'Database URL (default: DATABASE_URL)', global: true })
    .option('config', {
      type: 'string',
      describe: 'Config file (default: SAFE_RUN_CONFIG, else safe-run.config.* here or in a parent directory)',
      global: true,
    })
    .option('json', { type: 'boolean', describe: 'Print one JSON document on stdout', global: true })
    .option('verbose', { type: 'boolean', describe: 'Debug logs, and stack traces on errors', global: true })
    .option('log-format', {
      choices: LOG_FORMATS,
      describe: 'Logs on stderr: human lines, or pino JSON lines (default: SAFE_RUN_LOG_FORMAT, else human)',
      global: true,
    }) as Argv<T & GlobalArgs>;
}

/** `<run>` of restore and undo: what `last` means there is history/latest-run.ts's "committed". */
export const COMMITTED_RUN_POSITIONAL = {
  type: 'string',
  demandOption: true,
  describe: 'Run id, a unique prefix of it (see `safe-run log`), or `last` (the newest committed run with a backup)',
} as const;
