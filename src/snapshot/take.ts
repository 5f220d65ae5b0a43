import { sql } from 'kysely';
import { readTableCatalog, type TableCatalog } from '../db/catalog.js';
import { type Db, onlyRow } from '../db/connection.js';
import { readIdentity, readWalPosition } from '../db/identity.js';
import { countInSnapshot, planExactCounts, sumPartitions, tablesToScan } from './counts.js';
import type { SnapshotOptions } from './types.js';
import type { Snapshot, TableKey, TableState } from '../records/index.js';

export interface TakenSnapshot<T> {
  readonly snapshot: Snapshot;
  /** What `whileOpen` returned (the backup, in a guarded run). */
  readonly held: T | undefined;
}

/**
 * Reads the state of every user table at one instant (SPEC "The guarded run" step 4).
 *
 * One REPEATABLE READ transaction exports its snapshot; the catalog, the identity, the
 * WAL position and every exact count are read in that snapshot, the counts in parallel on
 * extra connections that import it. `whileOpen` runs before the exporting transaction
 * ends, because an exported snapshot can only be imported while it is open: that is when
 * the caller runs `pg_dump --snapshot`, so the backup holds exactly the rows counted here.
 *
 * Cost grows with the number of tables (a fixed number of catalog queries) plus the rows of
 * the tables counted exactly, never with the rows of the others.
 *
 * The pool behind `db` needs `countConnections + 1` free connections; with
 * countConnections 0 everything runs on the exporting connection.
 */
export async function takeSnapshot<T>(
  db: Db,
  options: SnapshotOptions,
  whileOpen?: (exportedSnapshotId: string) => Promise<T>,
): Promise<TakenSnapshot<T>> {
  const started = performance.now();
  const takenAt = new Date().toISOString();
  return db
    .transaction()
    .setIsolationLevel('repeatable read')
    .setAccessMode('read only')
    .execute(async (trx) => {
      // The first statement fixes the transaction's snapshot; exporting it here makes that
      // instant the one everything below describes.
      const snapshotId = onlyRow((await sql<{ id: string }>`select pg_export_snapshot() as id`.execute(trx)).rows).id;
      const database = await readIdentity(trx, options.url);
      const wal = await readWalPosition(trx);
      const catalog = await readTableCatalog(trx);

      const wanted = planExactCounts(catalog, options.exactTables ?? new Set(), options.exactCountThreshold);
      const counts = await countInSnapshot(db, trx, snapshotId, tablesToScan(catalog, wanted), options.countConnections ?? 2);
      sumPartitions(catalog, counts, wanted);

      const snapshot: Snapshot = {
        takenAt,
        database,
        walLsn: wal.lsn,
        tables: tableStates(catalog, counts),
        durationMs: Math.round(performance.now() - started),
      };
      const held = whileOpen ? await whileOpen(snapshotId) : undefined;
      return { snapshot, held };
    });
}

function tableStates(catalog: TableCatalog, counts: ReadonlyMap<TableKey, number>): Record<TableKey, TableState> {
  const tables: Record<TableKey, TableState> = {};
  for (const [key, t] of Object.entries(catalog)) {
    const exact = counts.get(key);
    tables[key] = {
      schema: t.schema,
      name: t.name,
      oid: t.oid,
      relfilenode: t.relfilenode,
      kind: t.kind,
      rows: exact ?? t.estimate,
      rowsKind: exact === undefined ? 'estimate' : 'exact',
      counters: t.counters,
      fingerprint: t.fingerprint,
      behaviourFingerprint: t.behaviourFingerprint,
    };
  }
  return tables;
}
