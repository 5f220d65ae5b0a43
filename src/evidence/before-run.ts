import type { Config } from '../config/config.js';
import type { Db } from '../db/connection.js';
import type { DriftFinding } from '../run/types.js';
import type { Snapshot } from '../snapshot/types.js';
import { driftSince } from './drift.js';
import { interruptedRunFindings, unsettledOpenRuns } from './interrupted.js';
import { LatestObservationCollector } from './observations.js';
import { readLiveFacts } from './run-status.js';
import { RunCollector } from './runs.js';
import { scanLog } from './scan.js';

/**
 * What a guarded run should record in RunOutcomeBody.drift: the changes since the previous
 * observation of this database and the earlier runs that never finished (killed, or dead
 * around COMMIT), in one pass over the log. Recording them is what lets `check` stop
 * repeating an interruption once a later run has put it on the record.
 *
 * `db` (a connection outside the run's transaction) settles `committing` outcomes through
 * txid_status; without it they are reported unsettled.
 */
export async function driftBeforeRun(config: Pick<Config, 'evidenceDir' | 'criticalTables'>, current: Snapshot, db?: Db): Promise<DriftFinding[]> {
  const key = current.database.key;
  const latest = new LatestObservationCollector(key);
  const runs = new RunCollector();
  await scanLog(config.evidenceDir, [latest, runs]);
  const open = unsettledOpenRuns(runs.runs, key);
  const facts = db && open.length ? await readLiveFacts(db, current.database, open) : null;
  const previous = latest.observation;
  return [...(previous ? driftSince(previous.snapshot, current, config) : []), ...interruptedRunFindings(open, facts)];
}
