import type { Config } from '../config/config.js';
import { tableKey } from '../db/names.js';
import type { Logger } from '../logger.js';
import type { ExecStatus, ExecTableChange, TableChange, TableKey } from '../records/index.js';
import { ExecCollector, type ExecSummary } from './exec-runs.js';
import { readLiveIdentity } from './live.js';
import type { TargetHandle } from '../db/target.js';
import { readLiveFacts, resolveStatus, type DisplayStatus } from './run-status.js';
import { isNonZero, isStarted, RunCollector, type RunSummary, type StartedRun } from './runs.js';
import { warnSkipped } from '../audit/read.js';
import { scanLog } from './scan.js';
import { byCodeUnit } from '../text-order.js';

export interface HistoryFilter {
  readonly script?: string;
  readonly table?: string;
  readonly since?: Date | null;
}

/** One line of `safe-run log`: a guarded run, or an `exec` (e.g. `npm run db:reset`). */
export interface HistoryRow {
  readonly kind: 'run' | 'exec';
  readonly runId: string;
  readonly ts: string;
  /** The script's name, or `exec "<command or label>"`. */
  readonly script: string;
  readonly status: DisplayStatus | ExecStatus;
  readonly statusNote: string | null;
  readonly operator: string;
  readonly reason: string | null;
  readonly database: string;
  readonly dryRun: boolean;
  /** A guarded run's exact changes (tables with a non-zero change). */
  readonly changes: Readonly<Record<TableKey, TableChange>>;
  /** An exec's tables whose count moved (it has no transaction to measure inside). */
  readonly counts?: Readonly<Record<TableKey, { readonly before: number | null; readonly after: number | null }>>;
}

export interface History {
  readonly runs: readonly HistoryRow[];
  /** Runs in the log before filtering. */
  readonly total: number;
}

/** Run history from one pass over the log; statuses settled by the live database when it answers. */
export async function runHistory(config: Config, filter: HistoryFilter, target: TargetHandle, log: Logger): Promise<History> {
  const collector = new RunCollector();
  const execCollector = new ExecCollector();
  await scanLog(config.evidenceDir, [collector, execCollector], warnSkipped(log));
  const all = collector.runs.filter(isStarted);
  const table = filter.table ? tableKey(filter.table) : null;
  const since = filter.since?.getTime() ?? null;
  const when = (ts: string): boolean => since === null || Date.parse(ts) >= since;
  const selected = all.filter(
    (r) =>
      (!filter.script || r.intent.script === filter.script) &&
      when(r.intent.ref.ts) &&
      (!table || isNonZero(r.outcome?.changes[table] ?? null)),
  );
  // An exec has no script name to match, and its counts are not its own exact changes.
  const execs = execCollector.execs.filter(
    (e) => !filter.script && when(e.intent.ref.ts) && (!table || countMoved(e.outcome?.changes[table])),
  );

  const live = needsDatabase(selected) ? await target.openIfPossible(log) : null;
  const identity = live ? await readLiveIdentity(live) : null;
  const facts = live && identity ? await readLiveFacts(live.db, identity, selected) : null;
  const rows = [...selected.map((run) => row(run, resolveStatus(run, facts))), ...execs.map(execRow)];
  return { runs: rows.sort((a, b) => byCodeUnit(a.ts, b.ts)), total: all.length + execCollector.execs.length };
}

function countMoved(change: ExecTableChange | undefined): boolean {
  return !!change && (change.before !== change.after || change.recreated || change.rewritten);
}

function execRow(e: ExecSummary): HistoryRow {
  const op = e.intent.operator;
  const changed = Object.entries(e.outcome?.changes ?? {}).filter(([, c]) => countMoved(c));
  return {
    kind: 'exec',
    runId: e.runId,
    ts: e.intent.ref.ts,
    script: e.intent.name,
    status: e.outcome?.status ?? 'interrupted',
    statusNote: e.outcome ? null : 'exec.intent without exec.outcome: the process died while the command ran',
    operator: op.gitUser && op.gitUser !== op.osUser ? `${op.osUser} (${op.gitUser})` : op.osUser,
    reason: e.intent.reason,
    database: e.intent.databaseKey,
    dryRun: false,
    changes: {},
    counts: Object.fromEntries(changed.map(([t, c]) => [t, { before: c.before, after: c.after }])),
  };
}

/** Only unfinished runs need the server's word; a clean history never opens a connection. */
function needsDatabase(runs: readonly RunSummary[]): boolean {
  return runs.some((r) => !r.post && !r.commitFailed && (!r.outcome || r.outcome.status === 'committing'));
}

function row(run: StartedRun, status: ReturnType<typeof resolveStatus>): HistoryRow {
  const intent = run.intent;
  const op = intent.operator;
  return {
    kind: 'run',
    runId: run.runId,
    ts: intent.ref.ts,
    script: intent.script,
    status: status.status,
    statusNote: status.note,
    operator: op.gitUser && op.gitUser !== op.osUser ? `${op.osUser} (${op.gitUser})` : op.osUser,
    reason: intent.reason,
    database: intent.databaseKey,
    dryRun: intent.dryRun,
    changes: run.outcome?.changes ?? {},
  };
}
