import type { z } from 'zod';
import { AckBodySchema } from './ack.js';
import { ExecIntentBodySchema, ExecOutcomeBodySchema } from './exec.js';
import { KeyAddBodySchema, KeyRotateBodySchema } from './key.js';
import { PruneBodySchema } from './prune.js';
import { LedgerSealBodySchema } from './ledger.js';
import { PitrRestoreBodySchema } from './pitr-restore.js';
import { RestoreBodySchema } from './restore.js';
import { RunCommitFailedBodySchema, RunIntentBodySchema, RunOutcomeBodySchema, RunPostBodySchema, SnapshotBodySchema } from './run.js';

/**
 * Every body the log stores, by kind and schema version. A body carries its version in `v`;
 * every entry written before versions existed has none and is version 1, which is why each
 * field added since is optional in the version-1 schema. A change that cannot be optional
 * becomes version 2 beside it, so old logs keep reading.
 */
export const RECORD_SCHEMAS = {
  'run.intent': { 1: RunIntentBodySchema },
  'run.outcome': { 1: RunOutcomeBodySchema },
  'run.post': { 1: RunPostBodySchema },
  'run.commit-failed': { 1: RunCommitFailedBodySchema },
  snapshot: { 1: SnapshotBodySchema },
  'exec.intent': { 1: ExecIntentBodySchema },
  'exec.outcome': { 1: ExecOutcomeBodySchema },
  restore: { 1: RestoreBodySchema },
  'restore.pitr': { 1: PitrRestoreBodySchema },
  prune: { 1: PruneBodySchema },
  'key.rotate': { 1: KeyRotateBodySchema },
  'key.add': { 1: KeyAddBodySchema },
  'ledger.seal': { 1: LedgerSealBodySchema },
  ack: { 1: AckBodySchema },
} as const satisfies Record<string, Readonly<Record<number, z.ZodType>>>;

export type RecordKind = keyof typeof RECORD_SCHEMAS;
export const RECORD_KINDS: readonly RecordKind[] = Object.freeze(Object.keys(RECORD_SCHEMAS).filter(isRecordKind));
export type RecordBody<K extends RecordKind> = z.infer<(typeof RECORD_SCHEMAS)[K][1]>;

export function isRecordKind(kind: string): kind is RecordKind {
  return Object.hasOwn(RECORD_SCHEMAS, kind);
}

/** The envelope every line of audit.jsonl has; `hash` and `sig` cover the body's stored bytes. */
export interface EntryEnvelope<K extends string = string, B = unknown> {
  readonly seq: number;
  readonly ts: string;
  readonly kind: K;
  readonly runId?: string;
  readonly body: B;
  /** Hash of the previous entry; 64 zeros for seq 1. */
  readonly prev: string;
  readonly hash: string;
  readonly keyId: string;
  readonly sig: string;
}

/** One entry whose body parsed for its kind: `switch (record.kind)` narrows the body. */
export type AuditRecord = { readonly [K in RecordKind]: EntryEnvelope<K, RecordBody<K>> }[RecordKind];
export type RecordOf<K extends RecordKind> = Extract<AuditRecord, { readonly kind: K }>;

export type RecordParse =
  | { readonly ok: true; readonly record: AuditRecord }
  | { readonly ok: false; readonly reason: 'unknown-kind' | 'bad-body'; readonly detail: string };

/**
 * Parse an entry's body for its kind. The record is a new object: the stored bytes stay what
 * the hash covers, and nothing here is ever serialised back to check one.
 */
export function parseRecord(entry: EntryEnvelope): RecordParse {
  if (!isRecordKind(entry.kind)) return { ok: false, reason: 'unknown-kind', detail: `kind ${entry.kind} is not one this safe-run reads` };
  const version = bodyVersion(entry.body);
  const schemas: Readonly<Record<number, z.ZodType>> = RECORD_SCHEMAS[entry.kind];
  const schema = typeof version === 'number' ? schemas[version] : undefined;
  if (!schema)
    return {
      ok: false,
      reason: 'bad-body',
      detail: `its ${entry.kind} body has schema version ${String(version)}, which this safe-run does not read`,
    };
  const parsed = schema.safeParse(entry.body);
  if (!parsed.success)
    return { ok: false, reason: 'bad-body', detail: `its ${entry.kind} body does not parse: ${describeIssues(parsed.error)}` };
  // The schema for entry.kind produced parsed.data, which is exactly what the union member says.
  return { ok: true, record: { ...entry, body: parsed.data } as AuditRecord };
}

function bodyVersion(body: unknown): unknown {
  if (typeof body !== 'object' || body === null || !('v' in body)) return 1;
  return body.v;
}

function describeIssues(error: z.ZodError): string {
  const shown = error.issues.slice(0, 3).map((issue) => `${issue.path.length ? issue.path.join('.') : '(body)'}: ${issue.message}`);
  const more = error.issues.length > 3 ? ` (and ${error.issues.length - 3} more)` : '';
  return shown.join('; ') + more;
}
