import type { Snapshot, TableKey } from '../snapshot/types.js';

/**
 * The bodies of the audit entries a guarded run writes. They are the evidence format that
 * `show`, `blame`, `check` and `report` read back, so fields are only ever added.
 */

export type Operation = 'insert' | 'update' | 'delete' | 'truncate' | 'ddl';

export interface TableChange {
  readonly inserted: number;
  readonly updated: number;
  readonly deleted: number;
  readonly truncated: boolean;
  /** The relfilenode changed without a TRUNCATE being the explanation (VACUUM FULL, ALTER ... TYPE). */
  readonly rewritten?: boolean;
  readonly ddl?: boolean;
}

export type ViolationRule =
  | 'undeclared-table'
  | 'undeclared-operation'
  | 'limit-exceeded'
  | 'critical-empty'
  | 'critical-drop'
  | 'undeclared-truncate'
  | 'undeclared-ddl'
  | 'critical-update'
  | 'setting-changed'
  | 'refused-statement'
  | 'evidence-schema'
  | 'unexplained-change'
  | 'escaped';

export interface Violation {
  /** The table, where the violation is about one. */
  readonly table?: TableKey;
  /** Otherwise what it is about: a setting, a catalog object, a statement. */
  readonly object?: string;
  readonly rule: ViolationRule;
  readonly detail: string;
}

/** What a violation is about, for one line of output. */
export function violationSubject(v: Violation): string {
  return v.table ?? v.object ?? '(run)';
}

export type DriftKind =
  | 'count-changed'
  | 'db-recreated'
  | 'stats-reset'
  | 'schema-changed'
  | 'critical-empty'
  | 'critical-drop'
  | 'interrupted-run';

export interface DriftFinding {
  readonly kind: DriftKind;
  readonly table?: TableKey;
  readonly before?: unknown;
  readonly after?: unknown;
  readonly detail: string;
}

export interface Operator {
  readonly osUser: string;
  readonly gitUser: string | null;
  readonly gitEmail: string | null;
}

export interface ScriptRecord {
  readonly name: string;
  readonly kind: 'ts' | 'sql';
  readonly path: string;
  readonly sha256: string;
  readonly git: { readonly commit: string; readonly dirty: boolean } | null;
  readonly touches: Readonly<Record<TableKey, readonly Operation[]>>;
  readonly limits: Readonly<Record<TableKey, Partial<Record<Operation, number>>>>;
  readonly critical: readonly TableKey[];
  /** Script-wide ddl (absent in entries written before it existed). */
  readonly ddl?: boolean;
}

export interface BackupRecord {
  readonly scope: 'touched' | 'full' | 'none';
  readonly status: 'verified' | 'skipped' | 'failed';
  /** Relative to the evidence directory. */
  readonly path: string | null;
  readonly format: 'custom' | 'directory' | null;
  readonly sha256: string | null;
  readonly bytes: number;
  readonly tables: readonly TableKey[];
  readonly pgDump: { readonly path: string; readonly version: string } | null;
  readonly durationMs: number;
  readonly error?: string;
}

/** What every intent entry records besides what is being run: who, where, why, and the state before. */
export interface IntentContext {
  readonly operator: Operator;
  readonly host: string;
  readonly reason: string | null;
  /** Connection URL without its password. */
  readonly url: string;
  readonly snapshot: Snapshot;
  readonly backup: BackupRecord;
}

export interface RunIntentBody extends IntentContext {
  readonly script: ScriptRecord;
  readonly args: readonly string[];
  readonly dryRun: boolean;
}

export type OutcomeStatus =
  | 'committing'
  | 'dry-run'
  | 'rolled-back'
  | 'guard-violation'
  | 'backup-failed'
  | 'interrupted'
  | 'failed'
  /** The script ended the guarded transaction itself: what it did is committed, unguarded. */
  | 'escaped';

export interface RunError {
  readonly message: string;
  readonly code?: string;
  readonly detail?: string;
  readonly hint?: string;
  readonly position?: number;
}

export interface RunOutcomeBody {
  readonly status: OutcomeStatus;
  readonly changes: Readonly<Record<TableKey, TableChange>>;
  /** Exact counts of the declared and critical tables, read inside the transaction. */
  readonly inTxCounts: Readonly<Record<TableKey, number>>;
  readonly violations: readonly Violation[];
  readonly error: RunError | null;
  readonly timingsMs: Readonly<Record<string, number>>;
  /** The script transaction's id; txid_status(xid) settles a `committing` outcome. */
  readonly xid: string | null;
  readonly walLsnStart: string | null;
  readonly sequencesUsed: readonly string[];
  /** Changes since the previous observation of this database (see `check`). */
  readonly drift: readonly DriftFinding[];
  /**
   * `role`: the script's session could not switch counting or triggers off (no superuser);
   * `superuser`: it could, and a setting turned off and on between two statements is unseen.
   */
  readonly trust?: 'role' | 'superuser';
  /** Other sessions' writes to the declared and critical tables during the run. */
  readonly concurrentWrites?: ConcurrentWritesRecord;
}

export interface ConcurrentWritesRecord {
  readonly tables: Readonly<Record<TableKey, { readonly inserted: number; readonly updated: number; readonly deleted: number }>>;
  readonly observedMs: number;
  readonly note: string;
}

export interface RunPostBody {
  /** `escaped`: the script committed by itself; the snapshot is what it left. */
  readonly status: 'committed' | 'escaped';
  readonly snapshot: Snapshot;
  readonly commitLsn: string;
  readonly xid: string;
}

export interface RunCommitFailedBody {
  readonly error: RunError;
  readonly xid: string | null;
}

export interface SnapshotBody {
  readonly label: string | null;
  readonly snapshot: Snapshot;
}

/** What a guarded run returns and what `--json` prints (SPEC "Machine-readable output"). */
export interface RunResult {
  readonly runId: string;
  readonly script: string;
  readonly status: 'committed' | OutcomeStatus | 'commit-failed';
  readonly exitCode: number;
  readonly changes: Readonly<Record<TableKey, TableChange>>;
  readonly counts: {
    readonly pre: Readonly<Record<TableKey, number>>;
    readonly post: Readonly<Record<TableKey, number>>;
    /** What the script's transaction saw at its end (for a dry run: what it would have left). */
    readonly inTransaction: Readonly<Record<TableKey, number>>;
  };
  readonly violations: readonly Violation[];
  readonly backup: BackupRecord;
  readonly drift: readonly DriftFinding[];
  readonly error: RunError | null;
  readonly timingsMs: Readonly<Record<string, number>>;
  readonly sequencesUsed: readonly string[];
  readonly trust?: 'role' | 'superuser';
  readonly concurrentWrites?: ConcurrentWritesRecord;
  readonly scriptOutput?: unknown;
}
