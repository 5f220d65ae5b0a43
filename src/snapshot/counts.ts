import { sql } from 'kysely';
import type { CatalogTable, TableCatalog } from '../db/catalog.js';
import { inImportedSnapshot, type Db } from '../db/connection.js';
import type { TableKey } from '../records/index.js';

/**
 * Which tables get an exact count(*), and how those counts are read inside an exported
 * snapshot so that they agree with each other and with the catalog read.
 */

/**
 * The tables whose count proves something (`exactTables`), and with a threshold (`snapshot
 * --exact`) every table estimated at or below it. Every other table is read from the
 * catalog and statistics: counting rows nobody asked about is what made a run cost seconds.
 * A partitioned table is never scanned itself: its leaves are counted and summed, so asking
 * for the parent asks for every leaf, and no row is counted twice.
 */
export function planExactCounts(catalog: TableCatalog, exactTables: ReadonlySet<TableKey>, threshold?: number): Set<TableKey> {
  const wanted = new Set<TableKey>();
  for (const table of Object.values(catalog)) {
    // A table the role may not read is estimated: the snapshot must not fail on it. (The
    // script's own tables are readable, or the script itself would fail.)
    if (table.readable && (exactTables.has(table.key) || (threshold !== undefined && table.estimate <= threshold))) {
      wanted.add(table.key);
      for (const leaf of table.leafPartitions) if (catalog[leaf]?.readable) wanted.add(leaf);
    }
  }
  return wanted;
}

/** The tables that need a scan of their own: plain tables (leaves included). */
export function tablesToScan(catalog: TableCatalog, wanted: ReadonlySet<TableKey>): CatalogTable[] {
  return (
    [...wanted]
      .map((key) => catalog[key])
      .filter((t): t is CatalogTable => t !== undefined && t.kind === 'table')
      // Biggest first, so the parallel workers finish at about the same time.
      .sort((a, b) => b.estimate - a.estimate)
  );
}

/**
 * A partitioned table's exact count is the sum of its leaves' exact counts. Any
 * partitioned table whose leaves were all counted gets one, so a sub-partitioned level
 * under a counted parent is exact too.
 */
export function sumPartitions(catalog: TableCatalog, counts: Map<TableKey, number>, wanted: ReadonlySet<TableKey>): void {
  for (const table of Object.values(catalog)) {
    if (table.kind !== 'partitioned') continue;
    const leaves = table.leafPartitions;
    if (leaves.length === 0 ? !wanted.has(table.key) : !leaves.every((leaf) => counts.has(leaf))) continue;
    counts.set(
      table.key,
      leaves.reduce((sum, leaf) => sum + counts.get(leaf)!, 0),
    );
  }
}

/**
 * Counts several tables in one statement (`union all`): most tables in a real schema are
 * small, and one round trip each would cost more than the counting. A table is never split
 * across statements, so a batch holds either many small tables or one large one.
 */
export async function countBatch(db: Db, tables: readonly Pick<CatalogTable, 'key' | 'schema' | 'name'>[]): Promise<Map<TableKey, number>> {
  // `only`: an inheritance child is a table of its own in the snapshot; counting its rows
  // under the parent as well would count them twice.
  const parts = tables.map((t, i) => sql`select ${i}::int as i, count(*)::int8 as n from only ${sql.id(t.schema, t.name)}`);
  const result = await sql<{ i: number; n: number }>`${sql.join(parts, sql` union all `)}`.execute(db);
  return new Map(result.rows.map((r) => [tables[r.i]!.key, r.n]));
}

/** Batches for countBatch: up to 10 tables or about 50k estimated rows each (measured: larger batches leave one worker idle at the end). */
export function countBatches(tables: readonly CatalogTable[]): CatalogTable[][] {
  const batches: CatalogTable[][] = [];
  let current: CatalogTable[] = [];
  let rows = 0;
  for (const table of tables) {
    if (current.length && (current.length >= 10 || rows + table.estimate > 50_000)) {
      batches.push(current);
      current = [];
      rows = 0;
    }
    current.push(table);
    rows += Math.max(0, table.estimate);
  }
  if (current.length) batches.push(current);
  return batches;
}

/**
 * Counts `tables` over up to `connections` extra transactions that all import the exported
 * snapshot, so every count describes the same instant as the catalog read. With one or none
 * (or a single batch to count) the work stays on `fallback`, the exporting transaction
 * itself, which sees the same snapshot by definition: a connection of its own would cost a
 * new server process for no parallel work.
 */
export async function countInSnapshot(
  db: Db,
  fallback: Db,
  snapshotId: string,
  tables: readonly CatalogTable[],
  connections: number,
  onCounted?: (done: number, total: number, table: TableKey) => void,
): Promise<Map<TableKey, number>> {
  const counts = new Map<TableKey, number>();
  const queue = countBatches(tables);
  const drain = async (conn: Db): Promise<void> => {
    for (let batch = queue.shift(); batch; batch = queue.shift()) {
      for (const [key, n] of await countBatch(conn, batch)) {
        counts.set(key, n);
        onCounted?.(counts.size, tables.length, key);
      }
    }
  };
  const workers = Math.min(connections, queue.length);
  if (workers <= 1) {
    await drain(fallback);
    return counts;
  }
  await Promise.all(Array.from({ length: workers }, () => inImportedSnapshot(db, snapshotId, drain)));
  return counts;
}
