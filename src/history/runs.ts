import type { AuditRecord, BackupRecord, Operator, OutcomeStatus, RecordOf, TableChange, TableKey } from '../records/index.js';
import { refOf, type EntryRef, type LoggedRef } from './entry-ref.js';

/**
 * One guarded run as `log`, `blame` and `report` need it: a few hundred bytes, however big
 * the snapshots in its entries are. Over a log of 10,000 runs these summaries are all that
 * stays in memory; the entries themselves are dropped as the stream moves on.
 */
export interface RunSummary {
  readonly runId: string;
  readonly intent: IntentSummary | null;
  readonly outcome: OutcomeSummary | null;
  readonly post: PostSummary | null;
  readonly commitFailed: { readonly ref: EntryRef; readonly error: string } | null;
}

/** A run whose intent is in the log: what every status, history and drift question is about. */
export interface StartedRun extends RunSummary {
  readonly intent: IntentSummary;
}

export function isStarted(run: RunSummary): run is StartedRun {
  return run.intent !== null;
}

export interface IntentSummary {
  readonly ref: LoggedRef;
  readonly script: string;
  readonly scriptSha256: string;
  readonly operator: Operator;
  readonly reason: string | null;
  readonly args: readonly string[];
  readonly dryRun: boolean;
  readonly databaseKey: string;
  readonly systemIdentifier: string | null;
  readonly backup: Pick<BackupRecord, 'status' | 'scope' | 'path' | 'sha256' | 'tables'>;
}

export interface OutcomeSummary {
  readonly ref: LoggedRef;
  readonly status: OutcomeStatus;
  readonly changes: Readonly<Record<TableKey, TableChange>>;
  readonly inTxCounts: Readonly<Record<TableKey, number>>;
  readonly xid: string | null;
  readonly error: string | null;
  /** Absent in entries written before the run recorded it. */
  readonly trust: 'role' | 'superuser' | null;
}

export interface PostSummary {
  readonly ref: LoggedRef;
  readonly commitLsn: string;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Feed it every entry in log order; `runs` keeps first-intent order. A resumed scan starts from the runs it kept. */
export class RunCollector {
  private readonly byId = new Map<string, Mutable<RunSummary>>();

  constructor(kept: readonly RunSummary[] = []) {
    for (const run of kept) this.byId.set(run.runId, { ...run });
  }

  add(entry: AuditRecord): void {
    if (!entry.runId) return;
    switch (entry.kind) {
      case 'run.intent':
        this.run(entry.runId).intent = summarizeIntent(entry);
        break;
      case 'run.outcome': {
        const body = entry.body;
        this.run(entry.runId).outcome = {
          ref: refOf(entry),
          status: body.status,
          changes: body.changes,
          inTxCounts: body.inTxCounts,
          xid: body.xid,
          error: body.error?.message ?? null,
          trust: body.trust ?? null,
        };
        break;
      }
      case 'run.post':
        this.run(entry.runId).post = { ref: refOf(entry), commitLsn: entry.body.commitLsn };
        break;
      case 'run.commit-failed':
        this.run(entry.runId).commitFailed = { ref: refOf(entry), error: entry.body.error.message };
        break;
      default:
        break;
    }
  }

  get runs(): RunSummary[] {
    return [...this.byId.values()];
  }

  get(runId: string): RunSummary | undefined {
    return this.byId.get(runId);
  }

  private run(runId: string): Mutable<RunSummary> {
    let run = this.byId.get(runId);
    if (!run) {
      run = { runId, intent: null, outcome: null, post: null, commitFailed: null };
      this.byId.set(runId, run);
    }
    return run;
  }
}

function summarizeIntent(entry: RecordOf<'run.intent'>): IntentSummary {
  const b = entry.body;
  return {
    ref: refOf(entry),
    script: b.script.name,
    scriptSha256: b.script.sha256,
    operator: b.operator,
    reason: b.reason,
    args: b.args,
    dryRun: b.dryRun,
    databaseKey: b.snapshot.database.key,
    systemIdentifier: b.snapshot.database.systemIdentifier,
    backup: { status: b.backup.status, scope: b.backup.scope, path: b.backup.path, sha256: b.backup.sha256, tables: b.backup.tables },
  };
}

/** The run's own change to one table, or null when its outcome recorded none. */
export function changeOf(run: RunSummary, table: TableKey): TableChange | null {
  return run.outcome?.changes[table] ?? null;
}

export function isNonZero(change: TableChange | null): boolean {
  return !!change && (change.inserted > 0 || change.updated > 0 || change.deleted > 0 || change.truncated || change.ddl === true);
}
