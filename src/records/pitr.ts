import { z } from '../zod.js';

/**
 * Point-in-time recovery through pgBackRest (backup.mode "pgbackrest"). Each record carries
 * its own `v`, so a later change can become version 2 beside it while old logs keep reading.
 */

/** In the intent's backup: where a restore to "just before this run" starts and stops. */
export const PitrIntentRecordSchema = z
  .object({
    v: z.literal(1),
    engine: z.literal('pgbackrest'),
    stanza: z.string(),
    pgbackrestVersion: z.string(),
    /** The newest backup set that ended before `preRunLsn`: the restore's --set. */
    backupLabel: z.string(),
    backupStopLsn: z.string().nullable(),
    /** Label of the incremental backup taken for this run (backup.pgbackrest.type "incr"), else null. */
    incrementalLabel: z.string().nullable(),
    /**
     * pg_current_wal_insert_lsn() read inside the pre-snapshot's transaction: every commit the
     * pre-snapshot counts lies before it, the script's lies after it. The restore's --target.
     */
    preRunLsn: z.string(),
    /** The stanza's cluster, checked against the target's pg_control_system(). */
    systemIdentifier: z.string().nullable(),
  })
  .readonly();
export type PitrIntentRecord = z.infer<typeof PitrIntentRecordSchema>;

/** In `run.post`: the commit's WAL reached the archive (or did not, and why). */
export const PitrPostRecordSchema = z
  .object({
    v: z.literal(1),
    /** The WAL segment holding the commit record. */
    walFile: z.string(),
    archived: z.boolean(),
    /** The newest segment archived (pg_stat_archiver; archive-push returns only once it is in the repository). */
    archiveMax: z.string().nullable(),
    waitedMs: z.number(),
    error: z.string().optional(),
  })
  .readonly();
export type PitrPostRecord = z.infer<typeof PitrPostRecordSchema>;
