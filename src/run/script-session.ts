import type { Db } from '../db/connection.js';
import { withDatabaseAt } from '../db/target.js';
import { parseDatabaseUrl } from '../db/url.js';
import type { Config } from '../config/config.js';

/**
 * The script's own session, apart from the runner's pool: under `scriptRole` it logs in as
 * that role, so COPY ... TO PROGRAM, dblink, session_replication_role and every other
 * superuser-only escape fails at the server. The password comes from `scriptDatabaseUrl`
 * or from PGPASSFILE / ~/.pgpass (node-postgres reads it), never from the runner's URL.
 * The session is closed after the run rather than pooled: nothing a script leaves in it
 * (temporary objects, settings) may reach a later reading.
 */
export function scriptSessionUrl(config: Pick<Config, 'scriptRole' | 'scriptDatabaseUrl'>, url: URL): URL {
  if (config.scriptDatabaseUrl) return parseDatabaseUrl(config.scriptDatabaseUrl);
  if (!config.scriptRole) return url;
  const asRole = new URL(url.href);
  asRole.username = encodeURIComponent(config.scriptRole);
  asRole.password = '';
  return asRole;
}

/** The script's session for as long as `fn` runs, checked on open (a wrong role password is one clear message). */
export async function withScriptSession<T>(
  config: Pick<Config, 'scriptRole' | 'scriptDatabaseUrl'>,
  url: URL,
  applicationName: string,
  fn: (session: Db) => Promise<T>,
): Promise<T> {
  return withDatabaseAt(scriptSessionUrl(config, url), { applicationName, maxConnections: 1 }, fn);
}
