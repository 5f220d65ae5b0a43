import { z } from '../zod.js';
import { OperatorSchema } from './intent.js';
import { TableKeySchema } from './table.js';

/** One archive a prune deleted: enough to say, later, which run lost its backup and what it was. */
export const PrunedBackupSchema = z
  .object({
    runId: z.string(),
    /** The script's name, or `exec <label or program>`. */
    source: z.string(),
    /** Relative to the evidence directory, as the intent recorded it. */
    path: z.string(),
    sha256: z.string(),
    bytes: z.number(),
    tables: z.array(TableKeySchema).readonly(),
  })
  .readonly();
export type PrunedBackup = z.infer<typeof PrunedBackupSchema>;

/**
 * Body of a signed `prune` entry, written before any archive is deleted: the evidence of a
 * deletion exists before the deletion does. The audit log itself is never pruned.
 */
export const PruneBodySchema = z
  .object({
    /** `--keep N` (newest N kept) and `--keep-days D`; a backup either rule keeps stays. */
    rule: z.object({ keep: z.number().nullable(), keepDays: z.number().nullable() }).readonly(),
    pruned: z.array(PrunedBackupSchema).readonly(),
    /** Archives left in place, among them the newest of each script and of each critical table. */
    kept: z.number(),
    operator: OperatorSchema,
    host: z.string(),
  })
  .readonly();
export type PruneBody = z.infer<typeof PruneBodySchema>;
