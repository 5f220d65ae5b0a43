import type { Config } from '../config/config.js';
import { driftSince } from '../evidence/drift.js';
import { latestObservation } from '../evidence/observations.js';
import type { Snapshot } from '../snapshot/types.js';
import type { DriftFinding } from './types.js';

/**
 * What changed in this database since safe-run last looked at it (the previous run's
 * post-snapshot or the last `safe-run snapshot`). Recorded in every outcome so that a run
 * can never be blamed for a change that happened before it started.
 */
export async function previousObservationDrift(config: Config, current: Snapshot): Promise<DriftFinding[]> {
  const previous = await latestObservation(config.evidenceDir, current.database.key);
  return previous ? driftSince(previous.snapshot, current, config) : [];
}
