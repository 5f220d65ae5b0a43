import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { createDb, type Db } from '../../src/db/connection.js';
import { withDatabase } from '../../src/db/url.js';
import { TEMPLATE_DB } from './constants.js';

export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  /** A pool on the test database, for arranging and asserting. */
  readonly db: Db;
  drop(): Promise<void>;
}

export function serverUrl(): string {
  const url = process.env.SAFE_RUN_TEST_SERVER_URL;
  if (!url) throw new Error('SAFE_RUN_TEST_SERVER_URL is not set: run the tests through `npm test`.');
  return url;
}

/** `fn` on a one-connection pool on the server's maintenance database: creating and dropping databases and roles. */
export async function asServerAdmin<T>(fn: (admin: Db) => Promise<T>): Promise<T> {
  const admin = createDb(serverUrl(), { maxConnections: 1 });
  try {
    return await fn(admin);
  } finally {
    await admin.destroy();
  }
}

/**
 * The incident's `db:reset`: the database dropped (its connections with it) and made again
 * under the same name, from the seeded template, or empty as a seed that died would leave it.
 */
export async function recreateTestDatabase(name: string, from: 'template' | 'empty' = 'template'): Promise<void> {
  await asServerAdmin(async (admin) => {
    await sql`drop database ${sql.id(name)} with (force)`.execute(admin);
    if (from === 'template') await sql`create database ${sql.id(name)} template ${sql.id(TEMPLATE_DB)}`.execute(admin);
    else await sql`create database ${sql.id(name)}`.execute(admin);
  });
}

/** A fresh database cloned from the seeded demo template. */
export async function createTestDatabase(prefix = 't'): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  await asServerAdmin((admin) => sql`create database ${sql.id(name)} template ${sql.id(TEMPLATE_DB)}`.execute(admin));
  const url = withDatabase(serverUrl(), name);
  const db = createDb(url);
  return {
    name,
    url,
    db,
    drop: async () => {
      await db.destroy();
      await asServerAdmin((admin) => sql`drop database if exists ${sql.id(name)} with (force)`.execute(admin));
    },
  };
}

export async function countRows(db: Db, table: string): Promise<number> {
  const result = await sql<{ n: number }>`select count(*)::int as n from ${sql.table(table)}`.execute(db);
  return result.rows[0]!.n;
}

/** What an out-of-band writer's transaction was: the ledger names it by these. */
export interface Writer {
  readonly pid: number;
  readonly xid: string;
}

/** One transaction on its own connection with that application_name (what PGAPPNAME sets), as an out-of-band writer. */
export async function writeAs(url: string, applicationName: string, statements: readonly string[]): Promise<Writer> {
  const db = createDb(url, { applicationName, maxConnections: 1 });
  try {
    return await db.transaction().execute(async (trx) => {
      const { rows } = await sql<Writer>`select pg_backend_pid() as pid, pg_current_xact_id()::text as xid`.execute(trx);
      for (const s of statements) await sql.raw(s).execute(trx);
      return rows[0]!;
    });
  } finally {
    await db.destroy();
  }
}
