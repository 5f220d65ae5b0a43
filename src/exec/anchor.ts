import type { ChainAnchor } from '../audit/anchor.js';
import { databaseAnchor } from '../audit/anchor.js';
import { createDb } from '../db/connection.js';

/**
 * The chain-head anchor on a connection that exists only while it writes. A wrapped command
 * such as a reset may drop and recreate the database: a pooled connection left open would
 * block a plain DROP DATABASE, and one killed by DROP ... WITH (FORCE) could not record the
 * outcome's head afterwards.
 */
export function transientAnchor(url: URL): ChainAnchor {
  const withAnchor = async <T>(fn: (anchor: ChainAnchor) => Promise<T>): Promise<T> => {
    const db = createDb(url, { applicationName: 'safe-run anchor', maxConnections: 1 });
    try {
      return await fn(databaseAnchor(db));
    } finally {
      await db.destroy();
    }
  };
  return {
    record: (logId, seq, hash, pin) => withAnchor((a) => a.record(logId, seq, hash, pin)),
    read: (logId) => withAnchor((a) => a.read(logId)),
    list: () => withAnchor(async (a) => (await a.list?.()) ?? []),
  };
}
