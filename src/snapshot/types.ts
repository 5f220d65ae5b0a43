import type { Snapshot, TableKey } from '../records/index.js';

/** How a snapshot is taken; what it records is `Snapshot` in records/. */
export interface SnapshotOptions {
  /**
   * Tables counted exactly: what the caller's proof needs (declared, cascaded, critical, config
   * `exactTables`). A promise when the caller is still working them out (a guarded run whose
   * script is loading): the snapshot is exported and its catalog read meanwhile, and only the
   * counts wait. Its rejection fails the snapshot.
   */
  readonly exactTables?: ReadonlySet<TableKey> | Promise<ReadonlySet<TableKey>>;
  /**
   * A guess at `exactTables` while they are still a promise (a guarded run's declaration
   * hint): counted at once instead of waiting. Once the promise settles, whatever it names
   * that the guess did not is counted too, in the same snapshot, and only what it names is
   * recorded exact: a guess can neither leave a count out nor add one to the record.
   */
  readonly exactTablesGuess?: ReadonlySet<TableKey>;
  /**
   * Also count exactly every table whose estimate is at or below this (`snapshot --exact`).
   * Absent: every table outside `exactTables` is recorded from the catalog and statistics,
   * so the snapshot costs a fixed number of queries plus the rows of `exactTables`.
   */
  readonly exactCountThreshold?: number;
  /**
   * Exact counts the caller already holds for this very instant (the guarded run's
   * in-transaction counts, for its post-snapshot): recorded as exact without a scan.
   */
  readonly knownCounts?: Readonly<Record<TableKey, number>>;
  /**
   * The most connections the snapshot holds at once, the exporting one included (default: as
   * many as the pool has). With two or more the fingerprints are read on a second one; with
   * three or more the exact counts spread over the rest. A caller holding a connection of the
   * same pool (a run's lock session) leaves it out, so that nothing waits for the pool.
   */
  readonly connections?: number;
  /** The URL the handle was made from: host and port for DatabaseIdentity.key over a Unix socket. */
  readonly url?: URL;
  /**
   * Called with the snapshot as soon as its own reads are done, while `whileOpen` (a run's
   * backup) may still be running: what needs only the snapshot starts then.
   */
  readonly onRead?: (snapshot: Snapshot) => void;
  /** Called as exact counts finish: tables done, tables to count, the last one done (a progress bar). */
  readonly onCounted?: (done: number, total: number, table: TableKey) => void;
}
