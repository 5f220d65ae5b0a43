import { z } from '../zod.js';
import { OperatorSchema } from './intent.js';
import { byTable, SnapshotSchema, TableKeySchema } from './table.js';

export const RestoredCountSchema = z
  .object({
    restored: z.number(),
    /** The run's pre-snapshot count: what the backup must hold. Null if the table was not in it. */
    pre: z.number().nullable(),
    preKind: z.enum(['exact', 'estimate']).nullable(),
  })
  .readonly();
export type RestoredCount = z.infer<typeof RestoredCountSchema>;

/** Body of the signed `restore` entry. Its entry-level runId is the restored run's. */
export const RestoreBodySchema = z
  .object({
    runId: z.string(),
    /** The script's name, or `exec <label or program>` for a wrapped command. */
    source: z.string(),
    /** The intent entry (run.intent or exec.intent) whose archive was restored. */
    intent: z.object({ kind: z.enum(['run.intent', 'exec.intent']), seq: z.number(), hash: z.string() }).readonly(),
    /** Path relative to the evidence directory, and the sha256 checked against the intent. */
    archive: z.object({ path: z.string(), sha256: z.string() }).readonly(),
    mode: z.enum(['scratch', 'into']),
    /** Without its password. */
    target: z.string(),
    database: z.string(),
    tables: z.array(TableKeySchema).readonly(),
    counts: byTable(RestoredCountSchema),
    operator: OperatorSchema,
    host: z.string(),
    /** --into only: the target right after the restore, so `check` and `blame` see it as an observation. */
    snapshot: SnapshotSchema.optional(),
  })
  .readonly();
export type RestoreBody = z.infer<typeof RestoreBodySchema>;
