import { ExitCode } from '../errors.js';
import type { BackupRecord, RunOutcomeBody, Snapshot, TableKey } from '../records/index.js';
import { estimatedTables } from '../snapshot/estimated.js';
import type { RunResult } from './types.js';

const EXIT_BY_STATUS: Record<RunResult['status'], number> = {
  committed: ExitCode.ok,
  'dry-run': ExitCode.ok,
  committing: ExitCode.ok,
  failed: ExitCode.scriptFailed,
  'rolled-back': ExitCode.scriptFailed,
  'commit-failed': ExitCode.scriptFailed,
  'guard-violation': ExitCode.guardViolation,
  'backup-failed': ExitCode.backupFailed,
  interrupted: ExitCode.interrupted,
  // What an escaped script did is committed: it is reported like a violation, with the real changes.
  escaped: ExitCode.guardViolation,
};

export interface RunResultInput {
  readonly runId: string;
  readonly script: string;
  readonly status: RunResult['status'];
  readonly pre: Snapshot;
  readonly post: Snapshot | null;
  readonly outcome: RunOutcomeBody;
  readonly backup: BackupRecord;
  readonly timings: Readonly<Record<string, number>>;
  readonly scriptOutput: unknown;
  /** What the script's statements reported changing; absent when the script never ran. */
  readonly rowsAffected?: number;
}

/**
 * The `--json` result (SPEC "Machine-readable output"). Counts cover the tables the run is
 * about: declared, critical and changed ones. `post` is what the database holds after the
 * run ended: the post-snapshot after a commit, the unchanged pre counts after a rollback;
 * `inTransaction` is what the script's transaction saw (what a dry run would have left).
 */
export function buildRunResult(input: RunResultInput): RunResult {
  const { pre, post, outcome } = input;
  const tables = new Set<TableKey>([...Object.keys(outcome.inTxCounts), ...Object.keys(outcome.changes)]);
  const countsOf = (snapshot: Snapshot): Record<TableKey, number> =>
    Object.fromEntries([...tables].filter((t) => snapshot.tables[t]).map((t) => [t, snapshot.tables[t]!.rows]));
  return {
    runId: input.runId,
    script: input.script,
    status: input.status,
    exitCode: EXIT_BY_STATUS[input.status],
    changes: outcome.changes,
    counts: {
      pre: countsOf(pre),
      post: countsOf(post ?? pre),
      inTransaction: outcome.inTxCounts,
      estimated: estimatedTables([pre, post], tables),
    },
    violations: outcome.violations,
    backup: input.backup,
    drift: outcome.drift,
    error: outcome.error,
    timingsMs: input.timings,
    sequencesUsed: outcome.sequencesUsed,
    ...(outcome.trust ? { trust: outcome.trust } : {}),
    ...(outcome.concurrentWrites ? { concurrentWrites: outcome.concurrentWrites } : {}),
    ...(input.scriptOutput !== undefined ? { scriptOutput: input.scriptOutput } : {}),
    ...(input.rowsAffected !== undefined ? { rowsAffected: input.rowsAffected } : {}),
  };
}
