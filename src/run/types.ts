import type {
  BackupRecord,
  ConcurrentWritesRecord,
  DriftFinding,
  OutcomeStatus,
  RunError,
  TableChange,
  TableKey,
  Violation,
} from '../records/index.js';

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
    /** Tables whose pre or post count is an estimate from statistics (not counted exactly). */
    readonly estimated: readonly TableKey[];
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
  /**
   * The rows the script's statements reported changing, summed as they returned. After a
   * rollback it is what the script had done before it (`changes` is measured only when the
   * transaction could still be read).
   */
  readonly rowsAffected?: number;
}
