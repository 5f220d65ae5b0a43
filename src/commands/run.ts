import { BACKUP_SCOPES, type BackupScope } from '../backup/scope.js';
import type { Config } from '../config/config.js';
import type { Logger } from '../logger.js';
import { withTarget } from '../db/target.js';
import { runGuarded, type RunOptions } from '../run/pipeline.js';
import { renderRunSummary } from '../run/summary.js';
import type { RunResult } from '../run/types.js';
import { createProgress } from '../progress.js';
import { findScriptFiles } from '../script/load.js';
import { emit, loadContext, type GlobalArgs } from './context.js';
import { unknownCommandOrScript } from './did-you-mean.js';
import { commandNames, type CommandBody } from './registry.js';

export type { RunOptions };

/** `safe-run <script>`: the guarded run. Returns the result; exit code is in result.exitCode. */
export async function run(config: Config, options: RunOptions, log: Logger): Promise<RunResult> {
  return withTarget(config.databaseUrl, (target) => runGuarded(config, options, target, log));
}

interface RunArgs extends GlobalArgs {
  readonly script: string;
  readonly 'dry-run'?: boolean;
  readonly reason?: string;
  readonly backup?: BackupScope;
  readonly yes?: boolean;
  readonly 'script-role'?: string;
  readonly '--'?: string[];
}

/** Both `safe-run <script>` and `safe-run run <script>` (src/commands/registry.ts). */
export const runCommand: CommandBody<RunArgs> = {
  builder: (yargs) =>
    yargs
      .positional('script', { type: 'string', demandOption: true, describe: 'Script name (see `safe-run list`)' })
      .option('dry-run', { type: 'boolean', describe: 'Run everything, then always roll back' })
      .option('reason', { type: 'string', describe: 'Why this run happens (ticket, incident); recorded in the audit log' })
      .option('backup', {
        choices: BACKUP_SCOPES,
        describe: 'Backup scope for this run (default: config backup.scope, itself default guarded); a dry run takes none',
      })
      .option('yes', { type: 'boolean', describe: 'Confirm environments that require confirmation' })
      .option('script-role', {
        type: 'string',
        describe: 'Run the script as this non-superuser role (overrides "scriptRole"; password from ~/.pgpass)',
      })
      .example('$0 cleanup-invalid-sessions --dry-run', 'See what would change, change nothing')
      .example('$0 cleanup-invalid-sessions --reason "INC-42"', 'Guarded run with a recorded reason')
      .example('$0 my-script -- --days 30', 'Pass arguments to the script'),
  handler: async (argv) => {
    const ctx = await loadContext(argv);
    assertScriptExists(ctx.config, argv.script, argv._[0] !== 'run');
    const config = argv['script-role'] ? { ...ctx.config, scriptRole: argv['script-role'], scriptDatabaseUrl: null } : ctx.config;
    const result = await run(
      config,
      {
        scriptName: argv.script,
        args: argv['--'] ?? [],
        dryRun: argv['dry-run'] === true,
        reason: argv.reason ?? null,
        backupScope: argv.backup,
        yes: argv.yes,
        progress: createProgress({ json: ctx.json }),
      },
      ctx.log,
    );
    emit(ctx, result, renderRunSummary, result.exitCode);
  },
};

/** Before anything connects: a word that names no script may be a mistyped command (`safe-run chek`). */
function assertScriptExists(config: Config, name: string, mayBeCommand: boolean): void {
  const scripts = findScriptFiles(config.scriptsDirs);
  if (scripts.has(name)) return;
  throw unknownCommandOrScript(name, [...scripts.keys()], mayBeCommand ? commandNames() : [], config.scriptsDirs);
}
