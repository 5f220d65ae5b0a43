import type { EntryEnvelope, RecordKind } from '../records/index.js';

/**
 * One line of audit.jsonl (SPEC "The audit log"). `hash` is sha256 over the canonical JSON
 * of the entry without `hash` and `sig`; `sig` is Ed25519 over `hash` (hex string bytes).
 */
/** The kinds this version writes; a line may carry another (kinds grow), which readers skip. */
export type EntryKind = RecordKind;

export type AuditEntry<B = unknown> = EntryEnvelope<EntryKind, B>;

export const GENESIS_PREV = '0'.repeat(64);

/** A point of the chain: the last entry's seq and hash, as anchored in the database or passed as --expect-head. */
export interface ChainHead {
  readonly seq: number;
  readonly hash: string;
}

export type VerifyReason =
  | 'hash-mismatch'
  | 'bad-signature'
  | 'unknown-key'
  | 'untrusted-key'
  | 'time-order'
  | 'broken-link'
  | 'seq-gap'
  | 'truncated'
  | 'malformed'
  /** The envelope is sound but the body is not what its kind says (see records/). */
  | 'bad-body'
  | 'witness-mismatch'
  | 'log-behind-anchor'
  /** verify with a database: a sealed change-ledger row was deleted or edited there (src/ledger). */
  | 'ledger-tampered';

/**
 * Where trust in the signing keys came from. `pinned`: config trustedKeys and/or the key the
 * database anchor recorded. `first-use`: neither exists, so entry 1's key is taken on trust.
 */
export interface KeyTrust {
  readonly mode: 'pinned' | 'first-use';
  readonly pinned: readonly string[];
}

export interface VerifyProblem {
  /** The seq of the bad entry (for a missing tail: the first missing seq). */
  readonly seq: number;
  /** 1-based line of audit.jsonl (for a missing tail: the line it would be on). */
  readonly line: number;
  readonly reason: VerifyReason;
  readonly detail: string;
}

export interface VerifyResult {
  readonly ok: boolean;
  /** Entries that verified before the first bad one (all of them when ok). */
  readonly entries: number;
  /** The last entry that verified. */
  readonly head: ChainHead | null;
  readonly firstBad?: VerifyProblem;
  /** Hash of entry 1; the database anchor is keyed by it. */
  readonly logId: string | null;
  /** Key ids that signed verified entries, in order of first use. */
  readonly keys: readonly string[];
  /** The head the database anchor holds for this log, when one was read. */
  readonly anchor: ChainHead | null;
  readonly trust: KeyTrust;
  /** Problems that did not fail verification (e.g. the database was unreachable). */
  readonly warnings: readonly string[];
}
