import type { Progress } from '../progress.js';
import type { TableKey } from '../records/index.js';

/** How a snapshot is taken; what it records is `Snapshot` in records/. */
export interface SnapshotOptions {
  /** Tables always counted exactly (declared and critical tables). */
  readonly exactTables?: ReadonlySet<TableKey>;
  /** Tables whose estimate is above this are not counted exactly. */
  readonly exactCountThreshold: number;
  /** Parallel connections for the exact counts, all on the same exported snapshot. */
  readonly countConnections?: number;
  /** The URL the handle was made from: host and port for DatabaseIdentity.key over a Unix socket. */
  readonly url?: URL;
  /** Tables counted of the tables to count, on a terminal. */
  readonly progress?: Progress;
}
