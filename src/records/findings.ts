import { z } from '../zod.js';
import { CounterDeltaSchema, TableKeySchema } from './table.js';

/** What the guard and the drift check find. Entries written before `object` existed carry `table` only. */

export const OperationSchema = z.enum(['insert', 'update', 'delete', 'truncate', 'ddl']);
export type Operation = z.infer<typeof OperationSchema>;

export const TableChangeSchema = z
  .object({
    inserted: z.number(),
    updated: z.number(),
    deleted: z.number(),
    truncated: z.boolean(),
    /** The relfilenode changed without a TRUNCATE being the explanation (VACUUM FULL, ALTER ... TYPE). */
    rewritten: z.boolean().optional(),
    ddl: z.boolean().optional(),
  })
  .readonly();
export type TableChange = z.infer<typeof TableChangeSchema>;

export const ViolationRuleSchema = z.enum([
  'undeclared-table',
  'undeclared-operation',
  'limit-exceeded',
  'critical-empty',
  'critical-drop',
  'undeclared-truncate',
  'undeclared-ddl',
  'critical-update',
  'setting-changed',
  'refused-statement',
  'evidence-schema',
  'unexplained-change',
  'ledger-disagrees',
  'sequence-reset',
  'foreign-write',
  'escaped',
]);
export type ViolationRule = z.infer<typeof ViolationRuleSchema>;

export const ViolationSchema = z
  .object({
    /** The table, where the violation is about one. */
    table: TableKeySchema.optional(),
    /** Otherwise what it is about: a setting, a catalog object, a statement. */
    object: z.string().optional(),
    rule: ViolationRuleSchema,
    detail: z.string(),
  })
  .readonly();
export type Violation = z.infer<typeof ViolationSchema>;

/** What a violation is about, for one line of output. */
export function violationSubject(v: Violation): string {
  return v.table ?? v.object ?? '(run)';
}

export const DriftKindSchema = z.enum([
  'count-changed',
  'db-recreated',
  'stats-reset',
  'schema-changed',
  'critical-empty',
  'critical-drop',
  'interrupted-run',
  'ledger-tampered',
  'ledger-trigger-disabled',
]);
export type DriftKind = z.infer<typeof DriftKindSchema>;

export const DriftFindingSchema = z
  .object({
    kind: DriftKindSchema,
    table: TableKeySchema.optional(),
    before: z.unknown().optional(),
    after: z.unknown().optional(),
    detail: z.string(),
    /** count-changed: the counter deltas, so a delete reads as a delete (null when not comparable). */
    deltas: CounterDeltaSchema.nullable().optional(),
    rowsKind: z.enum(['exact', 'estimate']).optional(),
    /** interrupted-run: which run, and the status it was left in. */
    runId: z.string().optional(),
    script: z.string().optional(),
    status: z.string().optional(),
  })
  .readonly();
export type DriftFinding = z.infer<typeof DriftFindingSchema>;

export const RunErrorSchema = z
  .object({
    message: z.string(),
    code: z.string().optional(),
    detail: z.string().optional(),
    hint: z.string().optional(),
    position: z.number().optional(),
  })
  .readonly();
export type RunError = z.infer<typeof RunErrorSchema>;
