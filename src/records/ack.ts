import { z } from '../zod.js';
import { OperatorSchema } from './intent.js';
import { TableKeySchema } from './table.js';

/**
 * Body of an `ack` entry: an operator answered one `check` finding. Findings stay open until
 * then, whatever is observed later, so an alert cannot go quiet because cron took a snapshot.
 * The finding's own facts are copied in, so the entry reads on its own in a post-mortem.
 */
export const AckBodySchema = z
  .object({
    v: z.literal(1),
    /** The finding's id as `check` prints it (e.g. `critical-empty-3f9a1c2e`). */
    finding: z.string().min(1),
    kind: z.string(),
    table: TableKeySchema.optional(),
    /** The database key (host:port/dbname) the finding is about. */
    database: z.string(),
    detail: z.string(),
    /** When `check` first saw it: the entry's ts, or the check's own time if it was only seen live. */
    firstSeen: z.string(),
    reason: z.string().min(1),
    operator: OperatorSchema,
    host: z.string(),
  })
  .readonly();
export type AckBody = z.infer<typeof AckBodySchema>;
