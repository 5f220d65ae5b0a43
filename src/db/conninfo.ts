import os from 'node:os';
import { databaseName, libpqEnv } from './url.js';
import { shellQuote } from '../shell-quote.js';

/**
 * Commands printed for an operator to paste at 3 a.m. name the whole connection (host, port,
 * user, database) of the database they are meant for, so a stray PGHOST or PGDATABASE in
 * the shell cannot point them elsewhere, and never the password (libpq finds it in
 * ~/.pgpass or PGPASSWORD). Every value is quoted for a POSIX shell.
 */
export interface Connection {
  readonly host: string;
  readonly port: string;
  readonly user: string;
  readonly dbname: string;
}

export function connectionOf(url: URL, dbname = databaseName(url)): Connection {
  const env = libpqEnv(url);
  // What libpq itself would fall back to, written out: the point is not to rely on it.
  return { host: env.PGHOST ?? 'localhost', port: env.PGPORT ?? '5432', user: env.PGUSER ?? os.userInfo().username, dbname };
}

/** `psql 'host=… port=… user=… dbname=…'` */
export function psqlCommand(c: Connection): string {
  const conninfo = (['host', 'port', 'user', 'dbname'] as const).map((k) => `${k}=${conninfoValue(c[k])}`).join(' ');
  return `psql ${shellQuote(conninfo)}`;
}

/** `dropdb --host=… --port=… --username=… -- 'name'` */
export function dropdbCommand(c: Connection): string {
  return `dropdb --host=${shellQuote(c.host)} --port=${shellQuote(c.port)} --username=${shellQuote(c.user)} ${shellQuote(c.dbname)}`;
}

function conninfoValue(value: string): string {
  return /^[A-Za-z0-9_./-]+$/.test(value) ? value : `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
