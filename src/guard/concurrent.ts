import { sql } from 'kysely';
import type { Db } from '../db/connection.js';
import type { ConcurrentWritesRecord, Snapshot, TableKey } from '../records/index.js';

/**
 * Other sessions keep writing while a run runs. Their writes to the watched tables
 * (declared and critical) are measured from the shared statistics, as the cumulative
 * counters now minus the pre-snapshot's, read on the runner's own connection: the
 * script's own counters reach shared statistics only after its transaction ends, so
 * nothing of the run is in there yet.
 *
 * Counters are evidence of a write, never proof that none happened: PostgreSQL 15 flushes
 * a backend's counters at most once a second after its transaction, an idle backend only
 * after 10 s. The outcome says how long the runner watched.
 */
/** The record the outcome stores (records/run.ts). */
export type ConcurrentWrites = ConcurrentWritesRecord;

const LAG_NOTE =
  'from shared statistics, which other sessions flush up to 1 s (10 s when idle) after their transactions: writes that were not flushed yet are not listed';

export async function readConcurrentWrites(runnerDb: Db, pre: Snapshot, watched: readonly TableKey[]): Promise<ConcurrentWrites> {
  const oids = watched.flatMap((key) => {
    const table = pre.tables[key];
    return table?.counters ? [table.oid] : [];
  });
  const rows = await runnerDb
    .selectFrom('pg_catalog.pg_stat_user_tables')
    .select(['relid', 'n_tup_ins as ins', 'n_tup_upd as upd', 'n_tup_del as del'])
    .where('relid', '=', sql<number>`any(${oids}::pg_catalog.oid[])`)
    .execute();
  const now = new Map(rows.map((r) => [Number(r.relid), r]));
  const tables: Record<TableKey, ConcurrentWrites['tables'][TableKey]> = {};
  for (const key of watched) {
    const before = pre.tables[key];
    const after = before && now.get(before.oid);
    if (!before?.counters || !after) continue;
    const moves = {
      inserted: after.ins - before.counters.n_tup_ins,
      updated: after.upd - before.counters.n_tup_upd,
      deleted: after.del - before.counters.n_tup_del,
    };
    if (moves.inserted > 0 || moves.updated > 0 || moves.deleted > 0) tables[key] = moves;
  }
  return { tables, observedMs: Date.now() - Date.parse(pre.takenAt), note: LAG_NOTE };
}
