import type { PitrCount, Snapshot, TableKey } from '../records/index.js';

export interface PitrComparison {
  readonly counts: Record<TableKey, PitrCount>;
  /** Tables counted exactly before the run whose restored count differs, without a concurrent writer to explain it. */
  readonly mismatched: TableKey[];
}

/**
 * The restored cluster beside the run's pre-snapshot. A table counted exactly before the run
 * must come back with exactly that count; a table another session wrote to during the run is
 * marked, because its writes are what a difference there would come from.
 */
export function comparePitrCounts(pre: Snapshot, restored: Snapshot, concurrent: ReadonlySet<TableKey>): PitrComparison {
  const counts: Record<TableKey, PitrCount> = {};
  const mismatched: TableKey[] = [];
  for (const key of Object.keys(pre.tables).sort()) {
    const before = pre.tables[key]!;
    const after = restored.tables[key];
    const concurrentWriters = concurrent.has(key);
    counts[key] = { restored: after?.rows ?? 0, pre: before.rows, preKind: before.rowsKind, concurrentWriters };
    const exact = before.rowsKind === 'exact' && after?.rowsKind === 'exact';
    if ((exact && after.rows !== before.rows && !concurrentWriters) || (!after && before.rowsKind === 'exact')) mismatched.push(key);
  }
  return { counts, mismatched };
}
