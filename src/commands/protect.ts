import type { Config } from '../config/config.js';
import { keyOf, parseTableName } from '../db/names.js';
import { withTarget, type TargetDatabase } from '../db/target.js';
import { usageError } from '../errors.js';
import { applySteps, assertSuperuser, planInstall, planRemove, type InstallStep } from '../ledger/install.js';
import { readLedgerState, type LedgerState } from '../ledger/state.js';
import type { Logger } from '../logger.js';
import type { TableKey } from '../records/index.js';
import { emit, loadContext, type GlobalArgs } from './context.js';
import type { CommandBody } from './registry.js';

export interface ProtectOptions {
  readonly tables: readonly string[];
  readonly keepRows: boolean;
  readonly remove: boolean;
  readonly dryRun: boolean;
}

export interface ProtectResult {
  readonly action: 'install' | 'remove';
  readonly dryRun: boolean;
  readonly steps: readonly InstallStep[];
  /** After the change (before it, with --dry-run). */
  readonly state: LedgerState;
}

/**
 * `safe-run protect`: installs the change ledger (src/ledger) on the named tables, or on the
 * config's `protect.tables` and every critical table when none is named. Critical tables and
 * `protect.keepRows` keep their rows; `--keep-rows` adds the named ones.
 */
export async function protectTables(config: Config, options: ProtectOptions, live: TargetDatabase, log: Logger): Promise<ProtectResult> {
  await assertSuperuser(live.db);
  // Named on the command line: parsed from what the operator typed, quotes and all.
  const named = options.tables.map(parseTableName);
  let steps: InstallStep[];
  if (options.remove) {
    const installed = (await readLedgerState(live.db)).tables;
    steps = await planRemove(live.db, named.length ? named : installed, named.length === 0);
  } else {
    const critical = Object.keys(config.criticalTables);
    const keys = new Set<TableKey>(named.length ? named.map((n) => keyOf(n.schema, n.table)) : [...config.protect.tables, ...critical]);
    const targets = named.length ? named : [...keys].map(parseTableName);
    if (!targets.length)
      throw usageError(
        'Name the tables to protect: the config has no protect.tables and no criticalTables.',
        'e.g. `safe-run protect users --keep-rows`, or add "protect": { "tables": ["users"] } to the config.',
      );
    const keep = new Set([...config.protect.keepRows, ...critical, ...(options.keepRows ? keys : [])]);
    steps = await planInstall(
      live.db,
      targets.map((t) => ({ ...t, keepRows: keep.has(keyOf(t.schema, t.table)) })),
      config.ledger,
    );
  }
  for (const step of steps) log.info(options.dryRun ? `would ${step.what}` : step.what);
  if (!options.dryRun) await applySteps(live.db, steps, config.lockTimeoutMs, log);
  return { action: options.remove ? 'remove' : 'install', dryRun: options.dryRun, steps, state: await readLedgerState(live.db) };
}

function renderProtect(r: ProtectResult): string {
  if (r.dryRun)
    return [
      `-- safe-run protect --dry-run: nothing was changed. The SQL it would run, one transaction per step:`,
      ...r.steps.flatMap((s) => [`\n-- ${s.what}`, 'begin;', ...s.statements.map((q) => `${q};`), 'commit;']),
    ].join('\n');
  const lines = [`${r.action === 'remove' ? 'removed' : 'installed'}:`, ...r.steps.map((s) => `  ${s.what}`), '', 'now protected:'];
  if (!r.state.tables.length) lines.push('  (no table)');
  for (const t of r.state.tables)
    lines.push(`  ${t.key}${t.keepRows ? ' (rows kept)' : ''}${t.problems.length ? `  PROBLEM: ${t.problems.join('; ')}` : ''}`);
  lines.push('Check any time with `safe-run doctor`; `safe-run blame <table>` names who wrote.');
  return lines.join('\n');
}

interface ProtectArgs extends GlobalArgs {
  readonly tables?: string[];
  readonly keepRows?: boolean;
  readonly remove?: boolean;
  readonly dryRun?: boolean;
}

export const protectCommand: CommandBody<ProtectArgs> = {
  builder: (yargs) =>
    yargs
      .positional('tables', {
        type: 'string',
        array: true,
        describe: 'schema.table (default: protect.tables and criticalTables of the config)',
      })
      .option('keep-rows', { type: 'boolean', describe: 'Also keep the changed rows as JSON (critical tables always do)' })
      .option('remove', {
        type: 'boolean',
        describe: 'Drop the triggers (all of them, event triggers too, when no table is named); the ledger stays',
      })
      .option('dry-run', { type: 'boolean', describe: 'Print the SQL and change nothing' })
      .example('$0 protect users --keep-rows', 'Record every write to users, with the rows')
      .example('$0 protect --dry-run', 'Show the SQL for the configured and critical tables'),
  handler: async (argv) => {
    const ctx = await loadContext(argv);
    const options = {
      tables: argv.tables ?? [],
      keepRows: argv.keepRows === true,
      remove: argv.remove === true,
      dryRun: argv.dryRun === true,
    };
    const result = await withTarget(ctx.config.databaseUrl, async (target) =>
      protectTables(ctx.config, options, await target.open(), ctx.log),
    );
    emit(ctx, result, renderProtect);
  },
};
