import { z } from '../zod.js';

/**
 * What a snapshot records (SPEC "Vocabulary: snapshot"). These shapes are written into signed
 * audit entries, so changing them changes the evidence format: add optional fields, never rename.
 * Each type is inferred from its schema, so what the code writes and what a reader accepts
 * cannot drift apart.
 */

/** `schema.table`, the key every table is known by in evidence and in `--json`. */
export const TableKeySchema = z.string();
export type TableKey = z.infer<typeof TableKeySchema>;

/** A record keyed by table, the shape of every per-table map in the log. */
export const byTable = <T extends z.ZodType>(value: T) => z.record(TableKeySchema, value).readonly();

export const TableCountersSchema = z
  .object({ n_tup_ins: z.number(), n_tup_upd: z.number(), n_tup_del: z.number(), n_live_tup: z.number() })
  .readonly();
export type TableCounters = z.infer<typeof TableCountersSchema>;

export const TableStateSchema = z
  .object({
    schema: z.string(),
    name: z.string(),
    oid: z.number(),
    /** 0 for a partitioned parent, which has no storage of its own. */
    relfilenode: z.number(),
    kind: z.enum(['table', 'partitioned']),
    rows: z.number(),
    rowsKind: z.enum(['exact', 'estimate']),
    /** Cumulative pg_stat_user_tables counters; null for a partitioned parent. */
    counters: TableCountersSchema.nullable(),
    /** sha256 over columns, types, constraints and indexes: changes on DDL. */
    fingerprint: z.string(),
    /**
     * sha256 over triggers and their enabled state, rules, policies, row security, privileges
     * and owner. Absent in snapshots written before it was recorded; compared only when both have it.
     */
    behaviourFingerprint: z.string().optional(),
  })
  .readonly();
export type TableState = z.infer<typeof TableStateSchema>;

export const DatabaseIdentitySchema = z
  .object({
    /**
     * Stable name for "the same database" across recreation: host:port/dbname. Observations are
     * matched on it, and a changed oid or system identifier under the same key is `db-recreated`.
     */
    key: z.string(),
    oid: z.number(),
    name: z.string(),
    /** pg_control_system().system_identifier; null when the role may not read it. */
    systemIdentifier: z.string().nullable(),
    serverVersion: z.string(),
    serverVersionNum: z.number(),
    currentUser: z.string(),
    host: z.string(),
    port: z.number(),
    postmasterStart: z.string(),
    statsReset: z.string().nullable(),
  })
  .readonly();
export type DatabaseIdentity = z.infer<typeof DatabaseIdentitySchema>;

export const SnapshotSchema = z
  .object({
    takenAt: z.string(),
    database: DatabaseIdentitySchema,
    /** pg_current_wal_insert_lsn() inside the snapshot's transaction. */
    walLsn: z.string(),
    tables: byTable(TableStateSchema),
    durationMs: z.number(),
  })
  .readonly();
export type Snapshot = z.infer<typeof SnapshotSchema>;

/** pg_stat_user_tables deltas between two observations of one table. */
export const CounterDeltaSchema = z.object({ inserted: z.number(), updated: z.number(), deleted: z.number() }).readonly();
export type CounterDelta = z.infer<typeof CounterDeltaSchema>;
