import { databaseName, libpqEnv } from '../db/url.js';

/**
 * The whole environment a pg_dump / pg_restore child gets (STYLE "Child processes are
 * explicit"). Credentials travel only here, never in argv, where `ps` shows them to every
 * user of the machine. Nothing else from our environment is inherited, so a stray
 * PGDATABASE or PGOPTIONS in the operator's shell cannot redirect the backup.
 */
const PASSED_THROUGH = [
  'PATH',
  // libpq finds ~/.pgpass and ~/.postgresql/root.crt through HOME.
  'HOME',
  'LANG',
  'LC_ALL',
  'LC_MESSAGES',
  'TZ',
  // Set on purpose by an operator who keeps passwords out of URLs.
  'PGPASSFILE',
  'PGSSLMODE',
  'PGSSLROOTCERT',
  'PGCONNECT_TIMEOUT',
] as const;

export function pgChildEnv(url: URL, applicationName: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of PASSED_THROUGH) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  // The URL wins over the passed-through defaults, as it does for our own connection.
  return { ...env, PGAPPNAME: applicationName, ...libpqEnv(url) };
}

/**
 * pg_restore only connects when given --dbname. A conninfo holding just the database name
 * keeps argv free of host, user and password: libpq takes those from the PG* variables.
 */
export function dbnameConninfo(url: URL): string {
  return `dbname='${databaseName(url).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
