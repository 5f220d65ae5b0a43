import type { Operator } from '../run/types.js';
import type { Snapshot, TableKey } from '../snapshot/types.js';

export interface RestoreOptions {
  /** A run id or a unique prefix of one. */
  readonly run: string;
  /** --table; empty means every table of the backup. */
  readonly tables: readonly string[];
  /** --into: an existing database whose named tables exist and are empty. */
  readonly into?: string | null;
}

export interface RestoredCount {
  readonly restored: number;
  /** The run's pre-snapshot count: what the backup must hold. Null if the table was not in it. */
  readonly pre: number | null;
  readonly preKind: 'exact' | 'estimate' | null;
}

/** Body of the signed `restore` entry. Its entry-level runId is the restored run's. */
export interface RestoreBody {
  readonly runId: string;
  /** The script's name, or `exec <label or program>` for a wrapped command. */
  readonly source: string;
  /** The intent entry (run.intent or exec.intent) whose archive was restored. */
  readonly intent: { readonly kind: 'run.intent' | 'exec.intent'; readonly seq: number; readonly hash: string };
  /** Path relative to the evidence directory, and the sha256 checked against the intent. */
  readonly archive: { readonly path: string; readonly sha256: string };
  readonly mode: 'scratch' | 'into';
  /** Without its password. */
  readonly target: string;
  readonly database: string;
  readonly tables: readonly TableKey[];
  readonly counts: Readonly<Record<TableKey, RestoredCount>>;
  readonly operator: Operator;
  readonly host: string;
  /** --into only: the target right after the restore, so `check` and `blame` see it as an observation. */
  readonly snapshot?: Snapshot;
}

/** What `restore` returns and prints with --json: the entry body without the snapshot, plus where the entry is. */
export interface RestoreResult extends Omit<RestoreBody, 'snapshot'> {
  readonly entry: { readonly seq: number; readonly hash: string };
}
