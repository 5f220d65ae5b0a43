import { z } from '../zod.js';
import { OperatorSchema } from './intent.js';
import { byTable, TableKeySchema } from './table.js';

export const PitrCountSchema = z
  .object({
    restored: z.number(),
    pre: z.number().nullable(),
    preKind: z.enum(['exact', 'estimate']).nullable(),
    /** Another session wrote to the table while the run was open (the run outcome's concurrentWrites). */
    concurrentWriters: z.boolean(),
  })
  .readonly();
export type PitrCount = z.infer<typeof PitrCountSchema>;

/** Body of the signed `restore.pitr` entry. Its entry-level runId is the restored run's. */
export const PitrRestoreBodySchema = z
  .object({
    v: z.literal(1),
    runId: z.string(),
    source: z.string(),
    intent: z.object({ seq: z.number(), hash: z.string() }).readonly(),
    stanza: z.string(),
    backupLabel: z.string(),
    targetLsn: z.string(),
    dataDir: z.string(),
    port: z.number(),
    database: z.string(),
    counts: byTable(PitrCountSchema),
    /** Exact pre-snapshot counts that the restored cluster does not reproduce (outside tables with concurrent writers). */
    mismatched: z.array(TableKeySchema).readonly(),
    operator: OperatorSchema,
    host: z.string(),
  })
  .readonly();
export type PitrRestoreBody = z.infer<typeof PitrRestoreBodySchema>;
