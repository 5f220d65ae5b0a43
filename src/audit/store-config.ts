import type { Config } from '../config/config.js';
import { createDb } from '../db/connection.js';
import { withDatabaseAt } from '../db/target.js';
import { parseDatabaseUrl, redactUrl } from '../db/url.js';
import { configureEvidenceStore } from './store.js';
import { databaseStore, readChainTarget } from './store-pg.js';
import type { EvidenceDb } from './store-schema.js';

/**
 * Config `evidence.store` turned into the evidence directory's store, once per process (the
 * command layer's loadContext, and a thread of its own such as the report's verify worker).
 * The one place the evidence database's pool is made: nothing connects until evidence is
 * touched, and the pool lets the process exit when idle, since no command owns its closing.
 */
export function useEvidenceStore(config: Pick<Config, 'evidenceStore' | 'evidenceDir' | 'databaseUrl'>): void {
  if (config.evidenceStore === 'file') return configureEvidenceStore(config.evidenceDir, null);
  const url = parseDatabaseUrl(config.evidenceStore);
  const target = async () => {
    const targetUrl = parseDatabaseUrl(config.databaseUrl);
    const chain = await withDatabaseAt(targetUrl, { applicationName: 'safe-run', maxConnections: 1 }, (db) => readChainTarget(db));
    if (!chain) throw new Error('pg_control_system() returned no row');
    return chain;
  };
  configureEvidenceStore(config.evidenceDir, databaseStore({ db: poolFor(url), where: `evidence database ${redactUrl(url)}`, target }));
}

/**
 * One pool per evidence database and process: a process that serves several targets (one
 * evidence directory each) must not open a pool per target, or 8 hosts x 8 targets exhaust
 * the evidence server's max_connections.
 */
const pools = new Map<string, EvidenceDb>();

function poolFor(url: URL): EvidenceDb {
  let db = pools.get(url.href);
  if (!db) {
    db = createDb<Record<string, never>>(withSessionDefaults(url), {
      applicationName: 'safe-run evidence',
      maxConnections: 4,
      allowExitOnIdle: true,
    });
    pools.set(url.href, db);
  }
  return db;
}

/**
 * A writer stuck while holding a chain head must not hang every host behind it forever; set
 * on the session (libpq `options`) rather than per append, which would cost a round trip each.
 */
function withSessionDefaults(url: URL): URL {
  const copy = new URL(url.href);
  const options = copy.searchParams.get('options') ?? '';
  if (!/lock_timeout/.test(options)) copy.searchParams.set('options', `${options} -c lock_timeout=30s`.trim());
  return copy;
}
