import { usageError } from '../errors.js';

/**
 * Database URLs. The password never leaves this module except inside the PG* environment
 * of a child process: evidence and logs get `redactUrl`, argv gets nothing secret.
 */
export function parseDatabaseUrl(raw: string | null | undefined): URL {
  if (!raw) {
    throw usageError(
      'No database given.',
      'Pass --db postgres://user@host:5432/dbname, set DATABASE_URL, or set "database" in safe-run.config.json.',
    );
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw usageError(`Not a database URL: ${redactLoose(raw)}`, 'Use the form postgres://user[:password]@host[:port]/dbname.');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw usageError(
      `Not a PostgreSQL URL (scheme "${url.protocol.replace(/:$/, '')}"): ${redactUrl(url)}`,
      'Use the form postgres://user[:password]@host[:port]/dbname.',
    );
  }
  return url;
}

export function redactUrl(url: URL | string): string {
  const copy = new URL(typeof url === 'string' ? url : url.href);
  if (copy.password) copy.password = '';
  return copy.href;
}

/** For strings that are not even URLs: still hide anything that looks like user:password@. */
function redactLoose(raw: string): string {
  return raw.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
}

export function databaseName(url: URL): string {
  return decodeURIComponent(url.pathname.replace(/^\//, '')) || decodeURIComponent(url.username) || 'postgres';
}

/**
 * libpq environment for pg_dump/pg_restore/psql. Credentials travel here, never in argv.
 * Query parameters (sslmode, host=/socket) map onto their PG* variables.
 */
export function libpqEnv(url: URL): Record<string, string> {
  const env: Record<string, string> = {};
  if (url.hostname) env.PGHOST = decodeURIComponent(url.hostname.replace(/^\[|\]$/g, ''));
  if (url.port) env.PGPORT = url.port;
  if (url.username) env.PGUSER = decodeURIComponent(url.username);
  if (url.password) env.PGPASSWORD = decodeURIComponent(url.password);
  env.PGDATABASE = databaseName(url);
  const map: Record<string, string> = {
    sslmode: 'PGSSLMODE',
    host: 'PGHOST',
    port: 'PGPORT',
    sslrootcert: 'PGSSLROOTCERT',
    sslcert: 'PGSSLCERT',
    sslkey: 'PGSSLKEY',
    application_name: 'PGAPPNAME',
    options: 'PGOPTIONS',
  };
  for (const [param, value] of url.searchParams) {
    const name = map[param];
    if (name) env[name] = value;
  }
  return env;
}

/** The same URL pointing at another database on the same server. */
export function withDatabase(url: URL | string, dbname: string): string {
  const copy = new URL(typeof url === 'string' ? url : url.href);
  copy.pathname = `/${encodeURIComponent(dbname)}`;
  return copy.href;
}
