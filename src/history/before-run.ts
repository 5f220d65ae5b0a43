import type { Config } from '../config/config.js';
import type { Db } from '../db/connection.js';
import type { DriftFinding, Snapshot } from '../records/index.js';
import { ignoreSkipped, readEntriesBackward, type OnSkipped } from '../audit/read.js';
import { diffSnapshots } from '../snapshot/diff.js';
import { refOf } from './entry-ref.js';
import { interruptedRunFindings, isOpen, unsettledOpenRuns } from './interrupted.js';
import { snapshotOf, type Observation } from './observations.js';
import { readLiveFacts } from './run-status.js';
import { RunCollector } from './runs.js';

/**
 * What a guarded run should record in RunOutcomeBody.drift: the changes since the previous
 * observation of this database and the earlier runs that never finished (killed, or dead
 * around COMMIT), reading only the recent end of the log. Recording them is what lets `check` stop
 * repeating an interruption once a later run has put it on the record.
 *
 * `db` (a connection outside the run's transaction) settles `committing` outcomes through
 * txid_status; without it they are reported unsettled.
 */
export async function driftBeforeRun(
  config: Pick<Config, 'evidenceDir' | 'criticalTables'>,
  current: Snapshot,
  db?: Db,
  onSkipped: OnSkipped = ignoreSkipped,
): Promise<DriftFinding[]> {
  return (await driftAgainstHistory(config, current, db, onSkipped)).findings;
}

export interface DriftAgainstHistory {
  /** The newest signed observation of this database; null when there is none. */
  readonly previous: Observation | null;
  readonly findings: DriftFinding[];
  /** Entries read; the whole log when there is no previous observation. */
  readonly entriesRead: number;
}

/** What `check` and a guarded run both need: drift since the newest observation, and unfinished runs. */
export async function driftAgainstHistory(
  config: Pick<Config, 'evidenceDir' | 'criticalTables'>,
  current: Snapshot,
  db?: Db,
  onSkipped: OnSkipped = ignoreSkipped,
): Promise<DriftAgainstHistory> {
  const key = current.database.key;
  const { previous, runs, entriesRead } = await recentHistory(config.evidenceDir, key, onSkipped);
  const open = unsettledOpenRuns(runs.runs, key);
  const facts = db && open.length ? await readLiveFacts(db, current.database, open) : null;
  const findings = [...(previous ? diffSnapshots(previous.snapshot, current, config) : []), ...interruptedRunFindings(open, facts)];
  return { previous, findings, entriesRead };
}

/**
 * The log read backwards, only as far as needed: past the newest observation of this
 * database and the intent of its newest settled run. Anything older was already judged by
 * that run's own drift (see unsettledOpenRuns), so a run costs the same on a log of ten
 * entries and of a million.
 */
async function recentHistory(
  evidenceDir: string,
  key: string,
  onSkipped: OnSkipped,
): Promise<{ previous: Observation | null; runs: RunCollector; entriesRead: number }> {
  const runs = new RunCollector();
  let previous: Observation | null = null;
  let entriesRead = 0;
  for await (const entry of readEntriesBackward(evidenceDir, onSkipped)) {
    entriesRead++;
    runs.add(entry);
    const snapshot = snapshotOf(entry);
    if (!previous && snapshot?.database.key === key) previous = { ref: refOf(entry), snapshot };
    if (entry.kind === 'run.intent' && snapshot?.database.key === key && isSettled(runs, entry.runId)) break;
  }
  return { previous, runs, entriesRead };
}

function isSettled(runs: RunCollector, runId: string | undefined): boolean {
  const run = runId === undefined ? undefined : runs.get(runId);
  return run !== undefined && !isOpen(run);
}
