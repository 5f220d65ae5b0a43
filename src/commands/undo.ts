import type { Config } from '../config/config.js';
import { withTarget } from '../db/target.js';
import type { Logger } from '../logger.js';
import { renderReinsert } from '../reinsert/summary.js';
import { undoRun, type UndoOptions, type UndoResult } from '../restore/undo.js';
import { resolveRunRef } from '../history/latest-run.js';
import { emit, loadContext, type GlobalArgs } from './context.js';
import { COMMITTED_RUN_POSITIONAL } from './global-args.js';
import type { CommandBody } from './registry.js';

export type { UndoOptions, UndoResult };

/** `safe-run undo <run>`: put back what one committed run changed, as a guarded run of its own. */
export async function undo(config: Config, options: UndoOptions, log: Logger): Promise<UndoResult> {
  // Two handles on the same database: one to plan with, one the guarded run opens as its own.
  return withTarget(config.databaseUrl, (target) =>
    withTarget(config.databaseUrl, (runTarget) => undoRun(config, options, target, runTarget, log)),
  );
}

export function renderUndo(r: UndoResult): string {
  const sources = Object.entries(r.sources).map(([t, s]) => `${t} from the ${s}`);
  const lines = [`Undo of run ${r.undone.runId} (${r.undone.script}): ${sources.join(', ') || 'nothing changed'}`, renderReinsert(r)];
  for (const c of r.skipped) lines.push(`  left as it is (--skip-conflicts): ${c.table} ${c.key}: ${c.why}`);
  for (const why of r.refused) lines.push(`  not undone: ${why}`);
  return lines.join('\n');
}

interface UndoArgs extends GlobalArgs {
  readonly run: string;
  readonly 'skip-conflicts'?: boolean;
  readonly 'dry-run'?: boolean;
  readonly reason?: string;
  readonly yes?: boolean;
}

const EPILOG = `Protected tables (safe-run protect T --keep-rows): the ledger kept the run's old and new rows, so deleted rows are re-inserted, updated rows set back and inserted rows deleted.
Other tables: only the run's backup is there (the rows as they were before it). Deleted rows are re-inserted when exactly as many are missing now as the run deleted; updates and inserts are refused, with the reason.
A row someone else changed since the run is a conflict: undo names each one and changes nothing. --skip-conflicts undoes the rest.
The undo is a guarded run of its own (snapshot, backup, signed entries); \`safe-run undo <its run id>\` undoes it again.
Exit codes: 0 undone, 1 a row changed between planning and the undo (nothing changed; run it again), 2 conflicts or nothing to undo, 4 backup missing or unreadable, 5 backup does not match its signed hash.`;

export const undoCommand: CommandBody<UndoArgs> = {
  builder: (yargs) =>
    yargs
      .positional('run', COMMITTED_RUN_POSITIONAL)
      .option('skip-conflicts', { type: 'boolean', describe: 'Undo what can be undone; leave rows changed since as they are' })
      .option('dry-run', { type: 'boolean', describe: 'Do everything, then roll back' })
      .option('reason', { type: 'string', describe: 'Why, recorded in the audit log' })
      .option('yes', { type: 'boolean', describe: 'Confirm environments that require confirmation' })
      .example('$0 undo 01JD4Q --dry-run', 'What the undo would put back, changing nothing')
      .example('$0 undo 01JD4Q --reason "INC-42"', 'Undo the run')
      .epilog(EPILOG),
  handler: async (argv) => {
    const ctx = await loadContext(argv);
    const run = await resolveRunRef(ctx.config, argv.run, ctx.log, { kind: 'committed' });
    const result = await undo(
      ctx.config,
      {
        run,
        skipConflicts: argv['skip-conflicts'] === true,
        dryRun: argv['dry-run'] === true,
        reason: argv.reason ?? null,
        yes: argv.yes,
      },
      ctx.log,
    );
    emit(ctx, result, renderUndo, result.run.exitCode);
  },
};
