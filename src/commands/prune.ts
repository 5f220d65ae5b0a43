import type { Config } from '../config/config.js';
import { withTarget } from '../db/target.js';
import { usageError } from '../errors.js';
import type { Logger } from '../logger.js';
import { pruneBackups, type PruneOptions, type PruneResult } from '../restore/prune.js';
import { emit, loadContext, type GlobalArgs } from './context.js';
import type { CommandBody } from './registry.js';

export type { PruneOptions, PruneResult };

/** `safe-run prune`: delete old backups under a signed `prune` entry. */
export async function prune(config: Config, options: PruneOptions, log: Logger): Promise<PruneResult> {
  return withTarget(config.databaseUrl, (target) => pruneBackups(config, options, target, log));
}

export function renderPrune(r: PruneResult): string {
  const verb = r.dryRun ? 'would prune' : 'pruned';
  const lines = r.pruned.map((b) => `  ${verb} ${b.runId}  ${b.source}  ${b.path}`);
  for (const p of r.protected) lines.push(`  kept    ${p.runId}  (${p.why})`);
  lines.push(
    r.dryRun
      ? `Dry run: ${r.pruned.length} backups would be deleted, ${r.kept} kept. Nothing was deleted.`
      : `${r.pruned.length} backups deleted, ${r.kept} kept; recorded as audit entry #${r.entry!.seq}. The audit log is never pruned.`,
  );
  return lines.join('\n');
}

interface PruneArgs extends GlobalArgs {
  readonly keep?: number;
  readonly 'keep-days'?: number;
  readonly 'dry-run'?: boolean;
}

export const pruneCommand: CommandBody<PruneArgs> = {
  builder: (yargs) =>
    yargs
      .option('keep', { type: 'number', describe: 'Keep the newest N backups' })
      .option('keep-days', { type: 'number', describe: 'Keep the backups of the last D days' })
      .option('dry-run', { type: 'boolean', describe: 'Say what would be deleted, delete nothing' })
      .check((argv) => {
        if (argv.keep === undefined && argv['keep-days'] === undefined) throw usageError('Say what to keep: --keep N or --keep-days D.');
        for (const [flag, value] of [
          ['--keep', argv.keep],
          ['--keep-days', argv['keep-days']],
        ] as const) {
          if (value !== undefined && (!Number.isInteger(value) || value < 0)) throw usageError(`${flag} takes a whole number, 0 or more.`);
        }
        return true;
      })
      .example('$0 prune --keep 20 --dry-run', 'What keeping the newest 20 would delete')
      .example('$0 prune --keep-days 30', 'Delete backups older than 30 days')
      .epilog(
        'Either rule keeps a backup. The newest backup of each script and the newest holding each critical table always stay. A signed "prune" entry names every deleted archive before it is deleted; `show` and `restore` on a pruned run say when it was pruned.',
      ),
  handler: async (argv) => {
    const ctx = await loadContext(argv);
    const result = await prune(
      ctx.config,
      { keep: argv.keep ?? null, keepDays: argv['keep-days'] ?? null, dryRun: argv['dry-run'] === true },
      ctx.log,
    );
    emit(ctx, result, renderPrune);
  },
};
