import type { Config } from '../config/config.js';
import { readIdentity } from '../db/identity.js';
import type { TargetDatabase } from '../db/target.js';
import { noProgress, type Progress, type ProgressTask } from '../progress.js';
import { takeSnapshot } from '../snapshot/take.js';
import type { DatabaseIdentity, Snapshot, TableKey } from '../records/index.js';

/**
 * The live database as evidence commands see it: one more observation ("now"), read the
 * same way as a run's snapshots so the two compare like for like. The command opens it
 * (db/target.ts) and closes it; nothing here opens a pool.
 */
export type LiveDatabase = TargetDatabase;

/**
 * Critical tables, the config's `exactTables` and any the caller names are counted exactly;
 * every other table comes from the catalog and statistics in a fixed number of queries, so
 * a cron snapshot or a check costs less than counting the database by hand. `countAll`
 * (`snapshot --exact`) also counts every table estimated at or below exactCountThreshold.
 */
export async function readLiveSnapshot(
  live: LiveDatabase,
  config: Pick<Config, 'criticalTables' | 'exactTables' | 'exactCountThreshold'>,
  extraExact: readonly TableKey[] = [],
  countAll = false,
  progress: Progress = noProgress,
): Promise<Snapshot> {
  const exactTables = new Set<TableKey>([...Object.keys(config.criticalTables), ...config.exactTables, ...extraExact]);
  // Drawn once counting starts, so a snapshot that counts nothing (or a few ms) draws nothing.
  let bar: ProgressTask | null = null;
  try {
    const { snapshot } = await takeSnapshot(live.db, {
      exactTables,
      ...(countAll ? { exactCountThreshold: config.exactCountThreshold } : {}),
      url: live.url,
      onCounted: (done, total, table) => {
        bar ??= progress.start('exact counts', total);
        bar.update(done, table);
      },
    });
    return snapshot;
  } finally {
    (bar as ProgressTask | null)?.stop();
  }
}

export async function readLiveIdentity(live: LiveDatabase): Promise<DatabaseIdentity> {
  return readIdentity(live.db, live.url);
}
