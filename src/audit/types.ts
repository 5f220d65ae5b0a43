/**
 * One line of audit.jsonl (SPEC "The audit log"). `hash` is sha256 over the canonical JSON
 * of the entry without `hash` and `sig`; `sig` is Ed25519 over `hash` (hex string bytes).
 */
export type EntryKind =
  | 'run.intent'
  | 'run.outcome'
  | 'run.post'
  | 'run.commit-failed'
  | 'snapshot'
  | 'exec.intent'
  | 'exec.outcome'
  | 'restore'
  | 'key.rotate';

export interface AuditEntry<B = unknown> {
  readonly seq: number;
  readonly ts: string;
  readonly kind: EntryKind;
  readonly runId?: string;
  readonly body: B;
  /** Hash of the previous entry; 64 zeros for seq 1. */
  readonly prev: string;
  readonly hash: string;
  readonly keyId: string;
  readonly sig: string;
}

export const GENESIS_PREV = '0'.repeat(64);
