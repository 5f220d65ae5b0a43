import { z } from '../zod.js';
import { LedgerCrossCheckSchema } from './ledger.js';
import { DriftFindingSchema, RunErrorSchema, TableChangeSchema, ViolationSchema } from './findings.js';
import { intentContextShape, ScriptRecordSchema } from './intent.js';
import { PitrPostRecordSchema } from './pitr.js';
import { byTable, SnapshotSchema } from './table.js';

/**
 * The bodies of the entries a guarded run writes. `show`, `blame`, `check` and `report` read them
 * back, so fields are only ever added, and a field added later is optional here for the older logs.
 */

export const RunIntentBodySchema = z
  .object({ ...intentContextShape, script: ScriptRecordSchema, args: z.array(z.string()).readonly(), dryRun: z.boolean() })
  .readonly();
export type RunIntentBody = z.infer<typeof RunIntentBodySchema>;

export const OutcomeStatusSchema = z.enum([
  'committing',
  'dry-run',
  'rolled-back',
  'guard-violation',
  'backup-failed',
  'interrupted',
  'failed',
  // The script ended the guarded transaction itself: what it did is committed, unguarded.
  'escaped',
]);
export type OutcomeStatus = z.infer<typeof OutcomeStatusSchema>;

export const ConcurrentWritesRecordSchema = z
  .object({
    tables: byTable(z.object({ inserted: z.number(), updated: z.number(), deleted: z.number() }).readonly()),
    observedMs: z.number(),
    note: z.string(),
  })
  .readonly();
export type ConcurrentWritesRecord = z.infer<typeof ConcurrentWritesRecordSchema>;

export const RunOutcomeBodySchema = z
  .object({
    status: OutcomeStatusSchema,
    changes: byTable(TableChangeSchema),
    /** Exact counts of the declared and critical tables, read inside the transaction. */
    inTxCounts: byTable(z.number()),
    violations: z.array(ViolationSchema).readonly(),
    error: RunErrorSchema.nullable(),
    timingsMs: z.record(z.string(), z.number()).readonly(),
    /** The script transaction's id; txid_status(xid) settles a `committing` outcome. */
    xid: z.string().nullable(),
    walLsnStart: z.string().nullable(),
    sequencesUsed: z.array(z.string()).readonly(),
    /** Changes since the previous observation of this database (see `check`). */
    drift: z.array(DriftFindingSchema).readonly(),
    /**
     * `role`: the script's session could not switch counting or triggers off (no superuser);
     * `superuser`: it could, and a setting turned off and on between two statements is unseen.
     * Absent in entries written before the trust model.
     */
    trust: z.enum(['role', 'superuser']).optional(),
    /** Other sessions' writes to the declared and critical tables during the run (absent in older entries). */
    concurrentWrites: ConcurrentWritesRecordSchema.optional(),
    /** The run's own statements in the change ledger, checked against `changes` (absent without a ledger). */
    ledger: LedgerCrossCheckSchema.optional(),
  })
  .readonly();
export type RunOutcomeBody = z.infer<typeof RunOutcomeBodySchema>;

export const RunPostBodySchema = z
  .object({
    /** `escaped` (absent from older logs): the script committed by itself; the snapshot is what it left. */
    status: z.enum(['committed', 'escaped']),
    snapshot: SnapshotSchema,
    commitLsn: z.string(),
    xid: z.string(),
    /** backup.mode "pgbackrest": the commit's WAL in the archive (absent for pg_dump and in older logs). */
    pitr: PitrPostRecordSchema.optional(),
  })
  .readonly();
export type RunPostBody = z.infer<typeof RunPostBodySchema>;

export const RunCommitFailedBodySchema = z.object({ error: RunErrorSchema, xid: z.string().nullable() }).readonly();
export type RunCommitFailedBody = z.infer<typeof RunCommitFailedBodySchema>;

export const SnapshotBodySchema = z.object({ label: z.string().nullable(), snapshot: SnapshotSchema }).readonly();
export type SnapshotBody = z.infer<typeof SnapshotBodySchema>;
