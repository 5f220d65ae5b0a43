import type { Config } from '../config/config.js';
import { withTarget } from '../db/target.js';
import { usageError } from '../errors.js';
import type { Logger } from '../logger.js';
import { renderReinsert } from '../reinsert/summary.js';
import { recoverRows, type RecoverOptions, type RecoverResult } from '../restore/recover.js';
import { emit, loadContext, type GlobalArgs } from './context.js';
import type { CommandBody } from './registry.js';
import { optionalSince, parseSince } from './since.js';

export type { RecoverOptions, RecoverResult };

/** `safe-run recover`: the rows the change ledger kept go back (removed rows, or an UPDATE's old values), as a guarded run of their own. */
export async function recover(config: Config, options: RecoverOptions, log: Logger): Promise<RecoverResult> {
  // Two handles on the same database: one to plan with, one the guarded run opens as its own.
  return withTarget(config.databaseUrl, (target) =>
    withTarget(config.databaseUrl, (runTarget) => recoverRows(config, options, target, runTarget, log)),
  );
}

export function renderRecover(r: RecoverResult): string {
  const statements = r.statements.map((s) => `#${s.id} ${s.operation} ${s.table}`).join(', ');
  const lines = [`Recover from the ledger: ${statements}`, renderReinsert(r)];
  for (const [table, c] of Object.entries(r.tables)) {
    const left = c.offered - c.inserted - c.skipped - c.updated - c.deleted;
    if (left > 0)
      lines.push(`  left as they are: ${left} row(s) of ${table} changed since the UPDATE (only rows still as it left them are set back)`);
  }
  return lines.join('\n');
}

interface RecoverArgs extends GlobalArgs {
  readonly ledger?: string[];
  readonly table?: string;
  readonly since?: string;
  readonly until?: string;
  readonly 'with-dependents'?: boolean;
  readonly 'dry-run'?: boolean;
  readonly reason?: string;
  readonly yes?: boolean;
}

const EPILOG = `Needs the change ledger (safe-run protect T --keep-rows): it kept the rows of every DELETE, TRUNCATE, DROP and UPDATE on a protected table.
The rows go back as a guarded run of their own (snapshot, backup, signed entries; declared: those tables, insert). A row whose primary key exists now is left as it is and counted as skipped. A key deleted twice comes back as it was last.
--ledger N of an UPDATE: its old values go back (declared: update), only on rows still exactly as that UPDATE left them; the others are left and counted. --table takes removals only.
--ledger N of an INSERT exits 2: it removed no row. \`safe-run undo <run>\` takes back a guarded run's inserts.
--with-dependents: also the rows the same transactions removed from the tables the cascade reaches, parents first, and foreign keys emptied by ON DELETE SET NULL set back.
Without a ledger, restore from a backup: safe-run restore <run> --in-place --table T.`;

export const recoverCommand: CommandBody<RecoverArgs> = {
  builder: (yargs) =>
    yargs
      .option('ledger', {
        type: 'string',
        array: true,
        describe: 'Ledger statement id (repeatable) of a DELETE, TRUNCATE, DROP or UPDATE, as `safe-run blame` prints it',
      })
      .option('table', { type: 'string', describe: 'Every kept row of this table removed in the window' })
      .option('since', { type: 'string', describe: 'With --table: start of the window (ISO date or a duration back, e.g. 2h)' })
      .option('until', { type: 'string', describe: 'With --table: end of the window (default: now)' })
      .option('with-dependents', { type: 'boolean', describe: 'Also the cascaded children removed by the same transactions' })
      .option('dry-run', { type: 'boolean', describe: 'Do everything, then roll back' })
      .option('reason', { type: 'string', describe: 'Why, recorded in the audit log' })
      .option('yes', { type: 'boolean', describe: 'Confirm environments that require confirmation' })
      .conflicts('ledger', 'table')
      .check((argv) => {
        if (!argv.ledger?.length && !argv.table) throw usageError('Name what to recover: --ledger ID, or --table T --since D.');
        if (argv.table && !argv.since)
          throw usageError('--table needs --since D: the start of the window.', 'e.g. --since 2h, or --since 2025-11-14T00:00Z');
        return true;
      })
      .example('$0 recover --ledger 17 --with-dependents', 'The rows of ledger statement 17 and its cascade')
      .example('$0 recover --table users --since 2h --dry-run', 'What would come back, changing nothing')
      .epilog(EPILOG),
  handler: async (argv) => {
    const ctx = await loadContext(argv);
    const common = {
      withDependents: argv['with-dependents'] === true,
      dryRun: argv['dry-run'] === true,
      reason: argv.reason ?? null,
      yes: argv.yes,
    };
    const options: RecoverOptions = argv.ledger?.length
      ? { ...common, ledger: argv.ledger.map(String) }
      : { ...common, table: argv.table!, since: parseSince(argv.since!), until: optionalSince(argv.until) };
    const result = await recover(ctx.config, options, ctx.log);
    emit(ctx, result, renderRecover, result.run.exitCode);
  },
};
