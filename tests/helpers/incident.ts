import { sql } from 'kysely';
import { createDb } from '../../src/db/connection.js';
import { waitFor } from './attacks.js';

/**
 * The incident's second half: a plain session (no guarded run) empties `users`, and the
 * test waits until its delete counters reach pg_stat_user_tables, so the next observation
 * can see who did it. The session ends first: a backend flushes its counters at exit.
 */
export async function emptyUsersOutsideAnyRun(url: string): Promise<number> {
  const session = createDb(url, { maxConnections: 1 });
  let deleted: number;
  try {
    deleted = Number((await sql`delete from users`.execute(session)).numAffectedRows ?? 0);
  } finally {
    await session.destroy();
  }
  const observer = createDb(url, { maxConnections: 1 });
  try {
    await waitFor(async () => {
      const { rows } = await sql<{ n: string }>`
        select n_tup_del::text as n from pg_catalog.pg_stat_user_tables where schemaname = 'public' and relname = 'users'`.execute(
        observer,
      );
      return Number(rows[0]?.n ?? 0) >= deleted;
    });
  } finally {
    await observer.destroy();
  }
  return deleted;
}
