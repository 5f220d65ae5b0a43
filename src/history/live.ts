import type { Config } from '../config/config.js';
import { assertReachable, createDb, type Db } from '../db/connection.js';
import { readIdentity } from '../db/identity.js';
import { parseDatabaseUrl } from '../db/url.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import { takeSnapshot } from '../snapshot/take.js';
import type { DatabaseIdentity, Snapshot, TableKey } from '../records/index.js';

/**
 * The live database as evidence commands see it: one more observation ("now"), read the
 * same way as a run's snapshots so the two compare like for like.
 */
export interface LiveDatabase {
  readonly db: Db;
  readonly url: URL;
  close(): Promise<void>;
}

export async function connectLive(config: Pick<Config, 'databaseUrl'>): Promise<LiveDatabase> {
  const url = parseDatabaseUrl(config.databaseUrl);
  const db = createDb(url, { applicationName: 'safe-run evidence', maxConnections: 4 });
  try {
    await assertReachable(db, url);
  } catch (error) {
    await db.destroy();
    throw error;
  }
  return { db, url, close: () => db.destroy() };
}

/**
 * For commands that work from the log alone (log, show, blame --no-live): a database is
 * welcome (it settles `committing` outcomes) but not required.
 */
export async function connectIfPossible(config: Pick<Config, 'databaseUrl'>, log: Logger): Promise<LiveDatabase | null> {
  if (!config.databaseUrl) return null;
  try {
    return await connectLive(config);
  } catch (error) {
    log.warn('database not reachable; statuses are read from the log only', { error: errorMessage(error) });
    return null;
  }
}

/** Critical tables (and any the caller names) are counted exactly; the rest per exactCountThreshold. */
export async function readLiveSnapshot(
  live: LiveDatabase,
  config: Pick<Config, 'criticalTables' | 'exactCountThreshold'>,
  extraExact: readonly TableKey[] = [],
): Promise<Snapshot> {
  const exactTables = new Set<TableKey>([...Object.keys(config.criticalTables), ...extraExact]);
  const { snapshot } = await takeSnapshot(live.db, {
    exactTables,
    exactCountThreshold: config.exactCountThreshold,
    countConnections: 2,
    url: live.url,
  });
  return snapshot;
}

export async function readLiveIdentity(live: LiveDatabase): Promise<DatabaseIdentity> {
  return readIdentity(live.db, live.url);
}
