import type { Generated, Selectable } from 'kysely';

/**
 * What safe-run's own handle can see: its evidence tables in the `safe_run` schema and the
 * catalog and statistics views the runner reads. Keys carry the schema, so a query built on
 * them names `pg_catalog` (a script's temporary view cannot stand in for a catalog) and
 * `safe_run` explicitly. Only the columns safe-run reads are listed. int8 columns are numbers
 * (connection.ts sets the parser); oid columns are numbers by the driver's default.
 */
export interface Database extends SafeRunTables, CatalogViews {}

/** safe-run's own evidence tables. A new table (the ledger, say) is one line here plus its row interface. */
export interface SafeRunTables {
  'safe_run.chain_head': ChainHeadTable;
}

/** The catalog and statistics views the runner reads; each is read-only to safe-run. */
export interface CatalogViews {
  'pg_catalog.pg_class': PgClass;
  'pg_catalog.pg_namespace': PgNamespace;
  'pg_catalog.pg_constraint': PgConstraint;
  'pg_catalog.pg_database': PgDatabase;
  'pg_catalog.pg_locks': PgLocks;
  'pg_catalog.pg_sequences': PgSequences;
  'pg_catalog.pg_stat_activity': PgStatActivity;
  'pg_catalog.pg_stat_user_tables': PgStatTables;
  'pg_catalog.pg_stat_xact_user_tables': PgStatXactTables;
  'pg_catalog.pg_stat_xact_all_tables': PgStatXactTables;
}

/** The chain-head anchor (audit/anchor.ts); key_id and evidence_dir are null on rows from before the pin. */
export interface ChainHeadTable {
  readonly log_id: string;
  readonly seq: number;
  readonly hash: string;
  readonly key_id: string | null;
  readonly evidence_dir: string | null;
  readonly updated_at: Generated<Date>;
}
export type ChainHeadRow = Selectable<ChainHeadTable>;

export interface PgClass {
  readonly oid: number;
  readonly relname: string;
  readonly relnamespace: number;
  /** r table, p partitioned table, v view, m materialized view, S sequence, ... */
  readonly relkind: string;
  readonly relfilenode: number;
  /** -1 until the first ANALYZE (PostgreSQL 14+). */
  readonly reltuples: number;
}

export interface PgNamespace {
  readonly oid: number;
  readonly nspname: string;
}

export interface PgConstraint {
  readonly oid: number;
  readonly conname: string;
  /** f foreign key, p primary key, u unique, c check, ... */
  readonly contype: string;
  readonly conrelid: number;
  readonly confrelid: number;
  /** a no action, r restrict, c cascade, n set null, d set default */
  readonly confdeltype: string;
}

export interface PgDatabase {
  readonly oid: number;
  readonly datname: string;
}

export interface PgLocks {
  readonly locktype: string;
  readonly database: number | null;
  readonly relation: number | null;
  readonly classid: number | null;
  readonly objid: number | null;
  readonly pid: number | null;
  readonly mode: string;
  readonly granted: boolean;
}

export interface PgSequences {
  readonly schemaname: string;
  readonly sequencename: string;
  readonly last_value: number | null;
}

export interface PgStatActivity {
  readonly pid: number;
  readonly application_name: string;
  readonly state: string | null;
  readonly xact_start: Date | null;
  readonly backend_start: Date;
  readonly client_addr: string | null;
}

/** The write counters of the transaction so far (pg_stat_xact_*): read as a delta inside one transaction. */
export interface PgStatXactTables {
  readonly relid: number;
  readonly schemaname: string;
  readonly relname: string;
  readonly n_tup_ins: number;
  readonly n_tup_upd: number;
  readonly n_tup_del: number;
}

/** Shared statistics: other sessions' writes, flushed with a lag (SPEC "Facts measured"). */
export interface PgStatTables extends PgStatXactTables {
  readonly n_live_tup: number;
}
