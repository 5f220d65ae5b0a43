import { sql } from 'kysely';
import { readForeignKeys } from '../db/catalog.js';
import type { Db } from '../db/connection.js';
import type { TableKey } from '../records/index.js';
import { readUserTables, type BackupTable } from './tables.js';

export type BackupScope = 'guarded' | 'touched' | 'full' | 'none';
export const BACKUP_SCOPES = ['guarded', 'touched', 'full', 'none'] as const;

/**
 * The tables a run's backup must hold (SPEC step 5): the declared tables, and every table a
 * delete in them can change without the script naming it. ON DELETE CASCADE deletes child
 * rows and SET NULL / SET DEFAULT rewrite them, transitively (child -> grandchild). A
 * partitioned table's rows live in its partitions, so those come along too.
 *
 * Declared names that match no table are left out: a script that declares `ddl` may create
 * the table it names, and there is nothing to back up yet.
 *
 * 'guarded' (the default) also starts from the critical tables: the rows an operator needs back
 * at 3 a.m. are the ones a run did not declare (`users` emptied by something else), and a
 * wiped critical table takes its cascade children along, so their rows come too.
 *
 * 'full' and 'none' return every user table and nothing, so callers can treat them alike.
 * Three statements whatever the size of the schema; the closure is walked here.
 */
export async function backupScope(
  db: Db,
  declared: readonly TableKey[],
  scope: BackupScope,
  critical: Iterable<TableKey> = [],
): Promise<TableKey[]> {
  if (scope === 'none') return [];
  if (scope === 'full') return (await readUserTables(db)).map((t) => t.key);
  return closureOf(await readScopeGraph(db), scope === 'guarded' ? [...declared, ...critical] : declared);
}

/** The tables and their dependent edges, read once: a run derives its touched and guarded scopes from one reading. */
export interface ScopeGraph {
  /**
   * Every user table, by key, with the exact names pg_dump needs: a run's backup dumps its
   * scope as read here, under the run's lock, without reading the tables again.
   */
  readonly existing: ReadonlyMap<TableKey, BackupTable>;
  readonly children: ReadonlyMap<TableKey, readonly TableKey[]>;
}

export async function readScopeGraph(db: Db): Promise<ScopeGraph> {
  const existing = new Map((await readUserTables(db)).map((t) => [t.key, t]));
  const children = new Map<TableKey, TableKey[]>();
  for (const edge of await readDependentEdges(db)) {
    if (!existing.has(edge.child)) continue;
    const list = children.get(edge.parent) ?? [];
    list.push(edge.child);
    children.set(edge.parent, list);
  }
  return { existing, children };
}

/** `seeds` and every table a delete in them reaches, transitively; seeds that match no table are left out. */
export function closureOf(graph: ScopeGraph, seeds: readonly TableKey[]): TableKey[] {
  const inScope = new Set<TableKey>();
  const pending = seeds.map((name) => normalizeKey(name, graph.existing)).filter((key) => graph.existing.has(key));
  for (let key = pending.pop(); key !== undefined; key = pending.pop()) {
    if (inScope.has(key)) continue;
    inScope.add(key);
    pending.push(...(graph.children.get(key) ?? []));
  }
  return [...inScope].sort();
}

/** `users` means `public.users` (SPEC "Configuration"); a key that already exists wins. */
function normalizeKey(name: TableKey, existing: ReadonlyMap<TableKey, unknown>): TableKey {
  if (existing.has(name) || name.includes('.')) return name;
  return `public.${name}`;
}

interface Edge {
  readonly parent: TableKey;
  readonly child: TableKey;
}

/**
 * parent -> child where a delete in the parent changes the child: foreign keys whose ON DELETE
 * action is CASCADE, SET NULL or SET DEFAULT, and partitioned table -> partition.
 */
async function readDependentEdges(db: Db): Promise<readonly Edge[]> {
  const keys = await readForeignKeys(db);
  const rewrites = keys.filter((k) => k.onDelete === 'cascade' || k.onDelete === 'set null' || k.onDelete === 'set default');
  return [...rewrites.map(({ parent, child }) => ({ parent, child })), ...(await readPartitionEdges(db))];
}

async function readPartitionEdges(db: Db): Promise<readonly Edge[]> {
  const result = await sql<Edge>`
    select pn.nspname || '.' || p.relname as parent, cn.nspname || '.' || c.relname as child
      from pg_catalog.pg_inherits i
      join pg_catalog.pg_class p on p.oid = i.inhparent and p.relkind = 'p'
      join pg_catalog.pg_namespace pn on pn.oid = p.relnamespace
      join pg_catalog.pg_class c on c.oid = i.inhrelid
      join pg_catalog.pg_namespace cn on cn.oid = c.relnamespace`.execute(db);
  return result.rows;
}
