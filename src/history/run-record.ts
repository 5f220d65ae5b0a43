import { warnSkipped } from '../audit/read.js';
import type { Config } from '../config/config.js';
import { usageError } from '../errors.js';
import type {
  AuditRecord,
  BackupRecord,
  DriftFinding,
  RecordKind,
  RecordOf,
  RunCommitFailedBody,
  RunError,
  RunIntentBody,
  RunOutcomeBody,
  RunPostBody,
  Snapshot,
  TableChange,
  TableKey,
  Violation,
} from '../records/index.js';
import type { Logger } from '../logger.js';
import { checkBackupFile, type BackupCheck } from './backup-check.js';
import { execName } from './exec-runs.js';
import { readLiveIdentity } from './live.js';
import type { TargetHandle } from '../db/target.js';
import { RunEntriesCollector } from './run-entries.js';
import { readLiveFacts, resolveStatus, type ResolvedStatus } from './run-status.js';
import { RunCollector } from './runs.js';
import { scanLog } from './scan.js';
import { estimatedTables } from '../snapshot/estimated.js';

/** Everything the log holds about one run, as `show --json` prints it. */
export interface RunRecord {
  readonly runId: string;
  readonly status: ResolvedStatus;
  readonly intent: Omit<RunIntentBody, 'snapshot'> | null;
  readonly outcome: RunOutcomeBody | null;
  readonly post: Omit<RunPostBody, 'snapshot'> | null;
  readonly commitFailed: RunCommitFailedBody | null;
  readonly changes: Readonly<Record<TableKey, TableChange>>;
  readonly violations: readonly Violation[];
  readonly drift: readonly DriftFinding[];
  readonly error: RunError | null;
  readonly counts: {
    readonly pre: Readonly<Record<TableKey, number>>;
    readonly post: Readonly<Record<TableKey, number>> | null;
    readonly inTransaction: Readonly<Record<TableKey, number>>;
    /** Tables whose pre or post count is an estimate from statistics (not counted exactly). */
    readonly estimated: readonly TableKey[];
  };
  readonly backup: BackupRecord | null;
  readonly backupCheck: BackupCheck | null;
  /** The signed `prune` entry that deleted the backup, if one did. */
  readonly pruned: { readonly ts: string; readonly seq: number } | null;
  /** Point-in-time recovery can stop at startLsn to land exactly before the run. */
  readonly wal: {
    readonly preSnapshotLsn: string | null;
    readonly startLsn: string | null;
    readonly xid: string | null;
    readonly commitLsn: string | null;
    readonly postSnapshotLsn: string | null;
  };
  readonly database: string | null;
  readonly entries: readonly {
    readonly seq: number;
    readonly kind: string;
    readonly ts: string;
    readonly hash: string;
    readonly prev: string;
    readonly keyId: string;
  }[];
  readonly related: readonly { readonly seq: number; readonly kind: string; readonly ts: string; readonly hash: string }[];
  readonly snapshots: { readonly pre: Snapshot | null; readonly post: Snapshot | null };
}

export async function showRun(config: Config, runRef: string, target: TargetHandle, log: Logger): Promise<RunRecord> {
  const collector = new RunEntriesCollector(runRef.trim());
  await scanLog(config.evidenceDir, [collector], warnSkipped(log));
  const { runId, entries, related } = collector.result(config.evidenceDir);
  const summary = new RunCollector();
  for (const e of entries) summary.add(e);
  const run = summary.get(runId);
  if (!run) {
    const exec = entryOf(entries, 'exec.intent')?.body;
    throw usageError(
      `${runId} is ${exec ? `a \`safe-run exec\` run (${execName(exec)})` : 'not a guarded run'}; \`show\` covers guarded runs.`,
      '`safe-run log` lists it with its counts, and `safe-run blame <table>` places it in the timeline.',
    );
  }

  const live = run.intent && !run.post && (!run.outcome || run.outcome.status === 'committing') ? await target.openIfPossible(log) : null;
  const identity = live ? await readLiveIdentity(live) : null;
  const status: ResolvedStatus = resolveStatus(run, live && identity ? await readLiveFacts(live.db, identity, [run]) : null);

  const intent = entryOf(entries, 'run.intent')?.body ?? null;
  const outcome = entryOf(entries, 'run.outcome')?.body ?? null;
  const post = entryOf(entries, 'run.post')?.body ?? null;
  const backup = intent?.backup ?? null;
  return {
    runId,
    status,
    intent: intent ? withoutSnapshot(intent) : null,
    outcome,
    post: post ? withoutSnapshot(post) : null,
    commitFailed: entryOf(entries, 'run.commit-failed')?.body ?? null,
    changes: outcome?.changes ?? {},
    violations: outcome?.violations ?? [],
    drift: outcome?.drift ?? [],
    error: outcome?.error ?? null,
    counts: {
      pre: rowsOf(intent?.snapshot),
      post: post ? rowsOf(post.snapshot) : null,
      inTransaction: outcome?.inTxCounts ?? {},
      estimated: estimatedTables([intent?.snapshot, post?.snapshot], tablesAskedAbout(intent, outcome, post)),
    },
    backup,
    backupCheck: backup ? await checkBackupFile(config.evidenceDir, backup) : null,
    pruned: related.filter((e) => e.kind === 'prune').map((e) => ({ ts: e.ts, seq: e.seq }))[0] ?? null,
    wal: {
      preSnapshotLsn: intent?.snapshot.walLsn ?? null,
      startLsn: outcome?.walLsnStart ?? null,
      xid: outcome?.xid ?? null,
      commitLsn: post?.commitLsn ?? null,
      postSnapshotLsn: post?.snapshot.walLsn ?? null,
    },
    database: intent?.snapshot.database.key ?? null,
    entries: entries.map((e) => ({ seq: e.seq, kind: e.kind, ts: e.ts, hash: e.hash, prev: e.prev, keyId: e.keyId })),
    related: related.map((e) => ({ seq: e.seq, kind: e.kind, ts: e.ts, hash: e.hash })),
    snapshots: { pre: intent?.snapshot ?? null, post: post?.snapshot ?? null },
  };
}

function entryOf<K extends RecordKind>(entries: readonly AuditRecord[], kind: K): RecordOf<K> | null {
  return entries.find((e): e is RecordOf<K> => e.kind === kind) ?? null;
}

function withoutSnapshot<B extends { snapshot: Snapshot }>(body: B): Omit<B, 'snapshot'> {
  const { snapshot: _omit, ...rest } = body;
  return rest;
}

/** The tables `show` prints: changed, declared, critical, counted in the transaction, or with a count that moved. */
function tablesAskedAbout(intent: RunIntentBody | null, outcome: RunOutcomeBody | null, post: RunPostBody | null): TableKey[] {
  const pre = intent?.snapshot.tables ?? {};
  const moved = Object.keys(pre).filter((k) => post && pre[k]!.rows !== post.snapshot.tables[k]?.rows);
  return [
    ...Object.keys(outcome?.changes ?? {}),
    ...Object.keys(outcome?.inTxCounts ?? {}),
    ...Object.keys(intent?.script.touches ?? {}),
    ...(intent?.script.critical ?? []),
    ...moved,
  ];
}

export function rowsOf(snapshot: Snapshot | undefined): Record<TableKey, number> {
  if (!snapshot) return {};
  return Object.fromEntries(Object.entries(snapshot.tables).map(([k, t]) => [k, t.rows]));
}
