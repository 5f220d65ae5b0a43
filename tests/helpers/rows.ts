import { sql } from 'kysely';
import type { Db } from '../../src/db/connection.js';

/** users and every table its deletes reach (CASCADE and SET NULL), as the demo schema has them. */
export const USERS_FAMILY = ['users', 'credit_allocation', 'subscriptions', 'usage_events'] as const;

/** Every row of each table as jsonb text, sorted: equal iff the tables hold the same rows. */
export async function rowsOf(db: Db, tables: readonly string[] = USERS_FAMILY): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const table of tables) {
    const { rows } = await sql<{ r: string }>`select to_jsonb(t)::text as r from ${sql.table(table)} t order by 1`.execute(db);
    out[table] = rows.map((row) => row.r);
  }
  return out;
}

/** to_jsonb of every row of a table, for recording them as the ledger would. */
export async function jsonRows(db: Db, table: string): Promise<unknown[]> {
  const { rows } = await sql<{ r: unknown }>`select to_jsonb(t) as r from ${sql.table(table)} t`.execute(db);
  return rows.map((row) => row.r);
}
