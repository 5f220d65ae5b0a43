import type { CounterDelta } from '../evidence/counters.js';
import type { BackupRecord, DriftFinding, IntentContext } from '../run/types.js';
import type { Snapshot, TableKey } from '../snapshot/types.js';

export interface ExecOptions {
  /** The program and its arguments, as given after `--`. */
  readonly command: readonly string[];
  readonly label: string | null;
  readonly reason: string | null;
  /** Default: full (the command declares nothing, so anything may change), or none if the config says none. */
  readonly backupScope?: 'full' | 'none';
  readonly yes?: boolean;
  /** --json: the command's stdout goes to stderr, so stdout holds only the result. */
  readonly json?: boolean;
}

/**
 * Body of `exec.intent`. `snapshot` is the pre-snapshot, under the same name as in
 * run.intent, so `check` and `blame` read it as an observation of the database.
 */
export interface ExecIntentBody extends IntentContext {
  /** argv with anything that looks like a password replaced by ***. */
  readonly command: readonly string[];
  readonly label: string | null;
  readonly cwd: string;
}

export type ExecStatus = 'completed' | 'failed' | 'interrupted' | 'backup-failed';

/** One table whose state differs between the pre- and the post-snapshot. */
export interface ExecTableChange {
  /** Null when the table did not exist at that moment. */
  readonly before: number | null;
  readonly after: number | null;
  readonly rowsKind: 'exact' | 'estimate';
  /** pg_stat_user_tables deltas; null when not comparable (table or database recreated, stats reset). */
  readonly counters: CounterDelta | null;
  /** Same name, new oid: dropped and created again. */
  readonly recreated: boolean;
  /** Same oid, new relfilenode: TRUNCATE or a rewrite (VACUUM FULL, ALTER TABLE ... TYPE). */
  readonly rewritten: boolean;
}

/**
 * Body of `exec.outcome`. `snapshot` is the post-snapshot (the observation this entry
 * records, as in run.post); null when the database could not be read afterwards.
 */
export interface ExecOutcomeBody {
  readonly status: ExecStatus;
  /** The command's exit code (shell convention); null when it never ran. */
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly durationMs: number;
  readonly error: string | null;
  readonly snapshot: Snapshot | null;
  readonly changes: Readonly<Record<TableKey, ExecTableChange>>;
  /** What changed between the snapshots, as `check` names it (count-changed, db-recreated, critical-empty, …). */
  readonly findings: readonly DriftFinding[];
}

/** What `exec` returns and prints with --json. */
export interface ExecResult {
  readonly runId: string;
  readonly label: string | null;
  readonly command: readonly string[];
  readonly status: ExecStatus;
  /** safe-run's own exit code (see `safe-run exec --help`). */
  readonly exitCode: number;
  readonly commandExitCode: number | null;
  readonly signal: string | null;
  readonly durationMs: number;
  readonly counts: { readonly pre: Readonly<Record<TableKey, number>>; readonly post: Readonly<Record<TableKey, number>> };
  readonly changes: Readonly<Record<TableKey, ExecTableChange>>;
  readonly findings: readonly DriftFinding[];
  readonly backup: BackupRecord;
  readonly error: string | null;
}
