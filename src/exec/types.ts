import type { BackupRecord, DriftFinding, ExecStatus, ExecTableChange, TableKey } from '../records/index.js';

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
