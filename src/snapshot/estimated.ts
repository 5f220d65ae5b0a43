import type { Snapshot, TableKey } from '../records/index.js';

/**
 * The tables among `keys` whose row count in any of the snapshots is an estimate (from the
 * catalog and statistics, not a count(*)): whatever prints those counts labels them, so a
 * reader never takes an estimate for proof.
 */
export function estimatedTables(snapshots: readonly (Snapshot | null | undefined)[], keys: Iterable<TableKey>): TableKey[] {
  return [...new Set(keys)].filter((key) => snapshots.some((s) => s?.tables[key]?.rowsKind === 'estimate')).sort();
}
