import type { Db } from '../db/connection.js';
import type { DatabaseIdentity } from '../records/index.js';
import type { RunSummary } from './runs.js';
import { activeRunSessions, resolveTxids, type ActiveRunSession, type TxStatus } from './txid.js';

/**
 * The status a person should read for a run. The outcome entry says what the run decided;
 * only `run.post` proves a COMMIT. A `committing` outcome without it is settled by
 * txid_status, and a run without an outcome is either still connected or was killed.
 */
export type DisplayStatus =
  | 'committed'
  | 'aborted'
  | 'committing'
  | 'commit-failed'
  | 'running'
  | 'interrupted'
  | 'dry-run'
  | 'rolled-back'
  | 'guard-violation'
  | 'backup-failed'
  | 'failed'
  | 'escaped';

export interface ResolvedStatus {
  readonly status: DisplayStatus;
  /** Why, when the status was inferred rather than read from an entry. */
  readonly note: string | null;
  /** True only when the run's changes are in the database. */
  readonly committed: boolean;
}

export interface LiveFacts {
  readonly identity: Pick<DatabaseIdentity, 'key' | 'systemIdentifier' | 'host' | 'port'>;
  readonly txids: ReadonlyMap<string, TxStatus>;
  readonly sessions: ReadonlyMap<string, ActiveRunSession>;
}

export function resolveStatus(run: RunSummary, live: LiveFacts | null): ResolvedStatus {
  // Before run.post: an escaped run's post entry records what it left, not a COMMIT by safe-run.
  if (run.outcome?.status === 'escaped')
    return { status: 'escaped', note: 'the script ended the guarded transaction itself; its changes are committed', committed: true };
  if (run.post) return { status: 'committed', note: null, committed: true };
  if (run.commitFailed) return { status: 'commit-failed', note: run.commitFailed.error, committed: false };
  const onLive = live !== null && run.intent !== null && sameCluster(run, live);
  if (!run.outcome) {
    const session = onLive ? live.sessions.get(run.runId) : undefined;
    if (session)
      return {
        status: 'running',
        note: `no outcome yet; its session (pid ${session.pid}, ${session.state ?? 'unknown state'}) is still connected`,
        committed: false,
      };
    return { status: 'interrupted', note: 'intent without outcome: the process died or was killed during the run', committed: false };
  }
  if (run.outcome.status !== 'committing') return { status: run.outcome.status, note: null, committed: false };
  const xid = run.outcome.xid;
  const tx = onLive && xid ? live.txids.get(xid) : undefined;
  if (tx === 'committed') return { status: 'committed', note: `no run.post entry; txid_status(${xid}) = committed`, committed: true };
  if (tx === 'aborted')
    return { status: 'aborted', note: `no run.post entry; txid_status(${xid}) = aborted, nothing was committed`, committed: false };
  if (tx === 'in progress')
    return { status: 'committing', note: `txid_status(${xid}) = in progress: COMMIT has not finished yet`, committed: false };
  return {
    status: 'committing',
    note: `no run.post entry and transaction ${xid ?? '?'} could not be checked${onLive ? '' : ' (its database is not the one connected)'}`,
    committed: false,
  };
}

/** xids are per cluster: only ask the server the run actually ran on. */
function sameCluster(run: RunSummary, live: LiveFacts): boolean {
  const intent = run.intent!;
  const a = intent.systemIdentifier;
  const b = live.identity.systemIdentifier;
  if (a !== null && b !== null) return a === b;
  return intent.databaseKey.split('/')[0] === `${live.identity.host}:${live.identity.port}`;
}

/** The txid_status and pg_stat_activity answers for the runs that need them, in two round trips. */
export async function readLiveFacts(db: Db, identity: LiveFacts['identity'], runs: Iterable<RunSummary>): Promise<LiveFacts> {
  const xids: string[] = [];
  for (const run of runs) {
    if (!run.post && !run.commitFailed && run.outcome?.status === 'committing' && run.outcome.xid) xids.push(run.outcome.xid);
  }
  return { identity, txids: await resolveTxids(db, xids), sessions: await activeRunSessions(db) };
}
