import type { Config } from '../config/config.js';
import { tableKey } from '../db/names.js';
import type { Logger } from '../logger.js';
import type { TableChange } from '../run/types.js';
import type { TableKey } from '../snapshot/types.js';
import { connectIfPossible, readLiveIdentity } from './live.js';
import { readLiveFacts, resolveStatus, type DisplayStatus } from './run-status.js';
import { isNonZero, RunCollector, type RunSummary } from './runs.js';
import { scanLog } from './scan.js';

export interface HistoryFilter {
  readonly script?: string;
  readonly table?: string;
  readonly since?: Date | null;
}

/** One line of `safe-run log`. */
export interface HistoryRow {
  readonly runId: string;
  readonly ts: string;
  readonly script: string;
  readonly status: DisplayStatus;
  readonly statusNote: string | null;
  readonly operator: string;
  readonly reason: string | null;
  readonly database: string;
  readonly dryRun: boolean;
  readonly changes: Readonly<Record<TableKey, TableChange>>;
}

export interface History {
  readonly runs: readonly HistoryRow[];
  /** Runs in the log before filtering. */
  readonly total: number;
}

/** Run history from one pass over the log; statuses settled by the live database when it answers. */
export async function runHistory(config: Config, filter: HistoryFilter, log: Logger): Promise<History> {
  const collector = new RunCollector();
  await scanLog(config.evidenceDir, [collector]);
  const all = collector.runs.filter((r) => r.intent);
  const table = filter.table ? tableKey(filter.table) : null;
  const since = filter.since?.getTime() ?? null;
  const selected = all.filter(
    (r) =>
      (!filter.script || r.intent!.script === filter.script) &&
      (since === null || Date.parse(r.intent!.ref.ts) >= since) &&
      (!table || isNonZero(r.outcome?.changes[table] ?? null)),
  );

  const live = needsDatabase(selected) ? await connectIfPossible(config, log) : null;
  try {
    const identity = live ? await readLiveIdentity(live) : null;
    const facts = live && identity ? await readLiveFacts(live.db, identity, selected) : null;
    return { runs: selected.map((run) => row(run, resolveStatus(run, facts))), total: all.length };
  } finally {
    await live?.close();
  }
}

/** Only unfinished runs need the server's word; a clean history never opens a connection. */
function needsDatabase(runs: readonly RunSummary[]): boolean {
  return runs.some((r) => !r.post && !r.commitFailed && (!r.outcome || r.outcome.status === 'committing'));
}

function row(run: RunSummary, status: ReturnType<typeof resolveStatus>): HistoryRow {
  const intent = run.intent!;
  const op = intent.operator;
  return {
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
