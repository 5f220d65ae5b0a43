import type { Config } from '../config/config.js';
import { readIdentity } from '../db/identity.js';
import type { TargetDatabase } from '../db/target.js';
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
): Promise<Snapshot> {
  const exactTables = new Set<TableKey>([...Object.keys(config.criticalTables), ...config.exactTables, ...extraExact]);
  const { snapshot } = await takeSnapshot(live.db, {
    exactTables,
    ...(countAll ? { exactCountThreshold: config.exactCountThreshold } : {}),
    countConnections: 2,
    url: live.url,
  });
  return snapshot;
}

export async function readLiveIdentity(live: LiveDatabase): Promise<DatabaseIdentity> {
  return readIdentity(live.db, live.url);
}
