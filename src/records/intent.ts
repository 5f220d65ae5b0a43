import { z } from '../zod.js';
import { OperationSchema } from './findings.js';
import { PitrIntentRecordSchema } from './pitr.js';
import { byTable, SnapshotSchema, TableKeySchema } from './table.js';

/** What every intent entry (run.intent, exec.intent) records besides what is run: who, where, why, the state before. */

export const OperatorSchema = z.object({ osUser: z.string(), gitUser: z.string().nullable(), gitEmail: z.string().nullable() }).readonly();
export type Operator = z.infer<typeof OperatorSchema>;

export const ScriptRecordSchema = z
  .object({
    name: z.string(),
    kind: z.enum(['ts', 'sql', 'builtin']),
    path: z.string(),
    sha256: z.string(),
    git: z.object({ commit: z.string(), dirty: z.boolean() }).readonly().nullable(),
    touches: byTable(z.array(OperationSchema).readonly()),
    limits: byTable(z.partialRecord(OperationSchema, z.number())),
    critical: z.array(TableKeySchema).readonly(),
    /** Script-wide ddl (absent in entries written before it existed). */
    ddl: z.boolean().optional(),
  })
  .readonly();
export type ScriptRecord = z.infer<typeof ScriptRecordSchema>;

export const BackupRecordSchema = z
  .object({
    scope: z.enum(['guarded', 'touched', 'full', 'none']),
    status: z.enum(['verified', 'skipped', 'failed']),
    /** Relative to the evidence directory. */
    path: z.string().nullable(),
    format: z.enum(['custom', 'directory']).nullable(),
    sha256: z.string().nullable(),
    bytes: z.number(),
    tables: z.array(TableKeySchema).readonly(),
    pgDump: z.object({ path: z.string(), version: z.string() }).readonly().nullable(),
    durationMs: z.number(),
    error: z.string().optional(),
    /** backup.mode "pgbackrest": no dump; the stanza's backup and WAL archive hold the state (absent for pg_dump). */
    pitr: PitrIntentRecordSchema.optional(),
  })
  .readonly();
export type BackupRecord = z.infer<typeof BackupRecordSchema>;

export const intentContextShape = {
  operator: OperatorSchema,
  host: z.string(),
  reason: z.string().nullable(),
  /** Connection URL without its password. */
  url: z.string(),
  snapshot: SnapshotSchema,
  backup: BackupRecordSchema,
};
export const IntentContextSchema = z.object(intentContextShape).readonly();
export type IntentContext = z.infer<typeof IntentContextSchema>;
