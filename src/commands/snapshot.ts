import type { CommandBody } from './registry.js';
import { databaseAnchor, openAuditLog } from '../audit/log.js';
import type { Config } from '../config/config.js';
import { withTarget, type TargetDatabase } from '../db/target.js';
import { criticalTablesOf } from '../history/critical-tables.js';
import { readLiveSnapshot } from '../history/live.js';
import { sealQuietly } from '../ledger/seal.js';
import type { Logger } from '../logger.js';
import type { TableKey } from '../records/index.js';
import { createProgress, type Progress } from '../progress.js';
import { emit, loadContext, type GlobalArgs } from './context.js';
import { byCodeUnit } from '../text-order.js';

export interface SnapshotResult {
  readonly seq: number;
  readonly hash: string;
  readonly ts: string;
  readonly label: string | null;
  readonly database: string;
  readonly tables: Readonly<Record<TableKey, { readonly rows: number; readonly rowsKind: 'exact' | 'estimate' }>>;
  readonly durationMs: number;
}

export interface SnapshotCommandOptions {
  readonly label: string | null;
  /** Count every table estimated at or below exactCountThreshold, not only the critical and `exactTables` ones. */
  readonly exact?: boolean;
  /** A bar for the exact counts on a terminal (createProgress); none elsewhere. */
  readonly progress?: Progress;
}

/**
 * `safe-run snapshot`: one signed observation, cheap enough for cron every few minutes.
 * Each one narrows the window in which an unexplained change can have happened. Critical
 * tables and `exactTables` are counted; the rest are recorded from the catalog and
 * statistics (estimate, counters, relfilenode), which is what `check` and `blame` compare.
 */
export async function recordSnapshot(
  config: Config,
  options: SnapshotCommandOptions,
  live: TargetDatabase,
  log: Logger,
): Promise<SnapshotResult> {
  // The key and the log's head are checked while the snapshot is read, which writes nothing:
  // a missing key still stops the command before anything is written. Counting every table
  // (--exact) can take minutes, which a missing key should not wait for.
  const opening = openAuditLog({
    evidenceDir: config.evidenceDir,
    signingKeyPath: config.signingKey,
    anchor: databaseAnchor(live.db),
    log,
  });
  opening.catch(() => {}); // awaited below, after the read
  if (options.exact) await opening;
  // Counted exactly like the config's: a critical table only a script declares is still one `check` watches.
  const critical = await criticalTablesOf(config, log);
  const snapshot = await readLiveSnapshot(
    live,
    { ...config, criticalTables: critical.rules },
    [],
    options.exact ?? false,
    options.progress,
  ).catch(async (error: unknown) => {
    await opening; // a missing key is the error to report, as if it had been checked first
    throw error;
  });
  const audit = await opening;
  await sealQuietly(live.db, audit, config.evidenceDir, snapshot.database, log);
  const entry = await audit.append('snapshot', { label: options.label, snapshot });
  return {
    seq: entry.seq,
    hash: entry.hash,
    ts: entry.ts,
    label: options.label,
    database: snapshot.database.key,
    tables: Object.fromEntries(Object.entries(snapshot.tables).map(([k, t]) => [k, { rows: t.rows, rowsKind: t.rowsKind }])),
    durationMs: snapshot.durationMs,
  };
}

function renderSnapshot(r: SnapshotResult): string {
  // Critical tables (exact counts) first: those are the ones a reader scans for.
  const tables = Object.entries(r.tables).sort(
    ([a, x], [b, y]) => Number(y.rowsKind === 'exact') - Number(x.rowsKind === 'exact') || byCodeUnit(a, b),
  );
  const exact = tables.filter(([, t]) => t.rowsKind === 'exact').length;
  const shown = tables
    .slice(0, 8)
    .map(([k, t]) => `${k.replace(/^public\./, '')} ${t.rows}${t.rowsKind === 'estimate' ? '~' : ''}`)
    .join(', ');
  return [
    `snapshot #${r.seq}${r.label ? ` "${r.label}"` : ''} of ${r.database} at ${r.ts}: ${tables.length} tables (${exact} counted exactly) in ${r.durationMs} ms`,
    `  ${shown}${tables.length > 8 ? `, … (${tables.length - 8} more)` : ''}`,
    ...(exact < tables.length ? ['  ~ = estimate from statistics (counters and relfilenode are recorded too)'] : []),
    `  entry hash ${r.hash}`,
  ].join('\n');
}

interface SnapshotArgs extends GlobalArgs {
  readonly label?: string;
  readonly exact?: boolean;
}

export const snapshotCommand: CommandBody<SnapshotArgs> = {
  builder: (yargs) =>
    yargs
      .option('label', { type: 'string', describe: 'A note stored with the snapshot (e.g. "cron", "before deploy")' })
      .option('exact', {
        type: 'boolean',
        default: false,
        describe: 'Count every table up to exactCountThreshold rows, not only critical tables and exactTables (slower)',
      })
      .example('$0 snapshot --label cron', 'What a crontab line runs every few minutes')
      .example('$0 snapshot --exact --label "before deploy"', 'Exact counts of every table, for a baseline'),
  handler: async (argv) => {
    const ctx = await loadContext(argv);
    const options = { label: argv.label ?? null, exact: argv.exact ?? false, progress: createProgress({ json: ctx.json }) };
    const result = await withTarget(ctx.config.databaseUrl, async (target) =>
      recordSnapshot(ctx.config, options, await target.open(), ctx.log),
    );
    emit(ctx, result, renderSnapshot);
  },
};
