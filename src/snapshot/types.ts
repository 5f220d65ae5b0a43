/**
 * What a snapshot records (SPEC "Vocabulary: snapshot"). These shapes are written into
 * signed audit entries, so changing them changes the evidence format: add fields, never
 * rename them.
 */

/** `schema.table`, the key every table is known by in evidence and in `--json`. */
export type TableKey = string;

export interface TableCounters {
  readonly n_tup_ins: number;
  readonly n_tup_upd: number;
  readonly n_tup_del: number;
  readonly n_live_tup: number;
}

export interface TableState {
  readonly schema: string;
  readonly name: string;
  readonly oid: number;
  /** 0 for a partitioned parent, which has no storage of its own. */
  readonly relfilenode: number;
  readonly kind: 'table' | 'partitioned';
  readonly rows: number;
  readonly rowsKind: 'exact' | 'estimate';
  /** Cumulative pg_stat_user_tables counters; null for a partitioned parent. */
  readonly counters: TableCounters | null;
  /** sha256 over columns, types, constraints and indexes: changes on DDL. */
  readonly fingerprint: string;
}

export interface DatabaseIdentity {
  /**
   * Stable name for "the same database" across recreation: host:port/dbname. Observations
   * are matched on it, and a changed oid or system identifier under the same key is what
   * `db-recreated` means.
   */
  readonly key: string;
  readonly oid: number;
  readonly name: string;
  /** pg_control_system().system_identifier; null when the role may not read it. */
  readonly systemIdentifier: string | null;
  readonly serverVersion: string;
  readonly serverVersionNum: number;
  readonly currentUser: string;
  readonly host: string;
  readonly port: number;
  readonly postmasterStart: string;
  readonly statsReset: string | null;
}

export interface Snapshot {
  readonly takenAt: string;
  readonly database: DatabaseIdentity;
  /** pg_current_wal_insert_lsn() inside the snapshot's transaction. */
  readonly walLsn: string;
  readonly tables: Readonly<Record<TableKey, TableState>>;
  readonly durationMs: number;
}

export interface SnapshotOptions {
  /** Tables always counted exactly (declared and critical tables). */
  readonly exactTables?: ReadonlySet<TableKey>;
  /** Tables whose estimate is above this are not counted exactly. */
  readonly exactCountThreshold: number;
  /** Parallel connections for the exact counts, all on the same exported snapshot. */
  readonly countConnections?: number;
  /** The URL the handle was made from: host and port for DatabaseIdentity.key over a Unix socket. */
  readonly url?: URL;
}
