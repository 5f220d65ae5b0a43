import { z } from '../zod.js';
import { DriftFindingSchema } from './findings.js';
import { intentContextShape } from './intent.js';
import { byTable, CounterDeltaSchema, SnapshotSchema } from './table.js';

/**
 * Body of `exec.intent`. `snapshot` is the pre-snapshot, under the same name as in run.intent,
 * so `check` and `blame` read it as an observation of the database.
 */
export const ExecIntentBodySchema = z
  .object({
    ...intentContextShape,
    /** argv with anything that looks like a password replaced by ***. */
    command: z.array(z.string()).readonly(),
    label: z.string().nullable(),
    cwd: z.string(),
  })
  .readonly();
export type ExecIntentBody = z.infer<typeof ExecIntentBodySchema>;

export const ExecStatusSchema = z.enum(['completed', 'failed', 'interrupted', 'backup-failed']);
export type ExecStatus = z.infer<typeof ExecStatusSchema>;

/** One table whose state differs between the pre- and the post-snapshot. */
export const ExecTableChangeSchema = z
  .object({
    /** Null when the table did not exist at that moment. */
    before: z.number().nullable(),
    after: z.number().nullable(),
    rowsKind: z.enum(['exact', 'estimate']),
    /** pg_stat_user_tables deltas; null when not comparable (table or database recreated, stats reset). */
    counters: CounterDeltaSchema.nullable(),
    /** Same name, new oid: dropped and created again. */
    recreated: z.boolean(),
    /** Same oid, new relfilenode: TRUNCATE or a rewrite (VACUUM FULL, ALTER TABLE ... TYPE). */
    rewritten: z.boolean(),
  })
  .readonly();
export type ExecTableChange = z.infer<typeof ExecTableChangeSchema>;

/**
 * Body of `exec.outcome`. `snapshot` is the post-snapshot (the observation this entry records,
 * as in run.post); null when the database could not be read afterwards.
 */
export const ExecOutcomeBodySchema = z
  .object({
    status: ExecStatusSchema,
    /** The command's exit code (shell convention); null when it never ran. */
    exitCode: z.number().nullable(),
    signal: z.string().nullable(),
    durationMs: z.number(),
    error: z.string().nullable(),
    snapshot: SnapshotSchema.nullable(),
    changes: byTable(ExecTableChangeSchema),
    /** What changed between the snapshots, as `check` names it (count-changed, db-recreated, critical-empty, …). */
    findings: z.array(DriftFindingSchema).readonly(),
  })
  .readonly();
export type ExecOutcomeBody = z.infer<typeof ExecOutcomeBodySchema>;
