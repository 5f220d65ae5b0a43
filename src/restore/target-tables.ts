import { sql } from 'kysely';
import { readForeignKeys } from '../db/catalog.js';
import { type Db, onlyRow } from '../db/connection.js';
import { quoteTable } from '../db/names.js';
import { usageError } from '../errors.js';
import type { TableKey } from '../records/index.js';

export interface RestoreTable {
  readonly key: TableKey;
  readonly schema: string;
  readonly name: string;
}

/**
 * --into loads rows into tables that already exist, and only into empty ones: it never
 * merges with or overwrites live rows. Every problem is named at once.
 */
export async function assertEmptyTargets(db: Db, tables: readonly RestoreTable[]): Promise<void> {
  const problems: string[] = [];
  for (const t of tables) {
    const { rows } = await sql<{ exists: boolean }>`select to_regclass(${quoteTable(t.schema, t.name)}) is not null as exists`.execute(db);
    if (!onlyRow(rows).exists) {
      problems.push(`${t.key} does not exist`);
      continue;
    }
    const { rows: any } = await sql<{ one: number }>`select 1 as one from ${sql.id(t.schema, t.name)} limit 1`.execute(db);
    if (any.length) problems.push(`${t.key} is not empty`);
  }
  if (problems.length) {
    throw usageError(
      `Cannot restore into the target: ${problems.join('; ')}. --into only fills existing, empty tables.`,
      'Restore into a scratch database (leave out --into), then copy the rows you need; or name only empty tables with --table.',
    );
  }
}

/**
 * Parents before children along the target's foreign keys, so each COPY finds the rows it
 * references. A cycle keeps the archive's order for the tables in it (the restore then
 * fails on the foreign key, all or nothing, and says which).
 */
export async function orderByForeignKeys(db: Db, tables: readonly RestoreTable[]): Promise<RestoreTable[]> {
  const keys = tables.map((t) => t.key);
  // A self-reference orders nothing: the table cannot go before itself.
  const rows = (await readForeignKeys(db)).filter((k) => k.child !== k.parent);
  const parents = new Map<TableKey, Set<TableKey>>(keys.map((k) => [k, new Set()]));
  for (const r of rows) if (parents.has(r.child) && parents.has(r.parent)) parents.get(r.child)!.add(r.parent);
  const ordered: RestoreTable[] = [];
  const placed = new Set<TableKey>();
  while (ordered.length < tables.length) {
    const ready = tables.filter((t) => !placed.has(t.key) && [...parents.get(t.key)!].every((p) => placed.has(p)));
    const next = ready.length ? ready : tables.filter((t) => !placed.has(t.key)).slice(0, 1);
    for (const t of next) {
      ordered.push(t);
      placed.add(t.key);
    }
  }
  return ordered;
}

export async function countTables(db: Db, tables: readonly RestoreTable[]): Promise<Record<TableKey, number>> {
  const counts: Record<TableKey, number> = {};
  for (const t of tables) {
    const { rows } = await sql<{ n: number }>`select count(*)::int8 as n from ${sql.id(t.schema, t.name)}`.execute(db);
    counts[t.key] = onlyRow(rows).n;
  }
  return counts;
}
