import { watchedTableKeys } from '../guard/watched.js';
import { sql } from 'kysely';
import { evaluateGuards } from '../guard/rules.js';
import { takeSnapshot } from '../snapshot/take.js';
import type { RunOutcomeBody, Snapshot, TableChange, TableKey, Violation } from '../records/index.js';
import { toRunError } from './run-error.js';
import type { TransactionInput } from './transaction.js';
import { onlyRow } from '../db/connection.js';

/**
 * The script ended the guarded transaction by itself: what it did is committed and cannot
 * be rolled back here. The one thing left is to record it truthfully: the statistics
 * deltas against the pre-snapshot and the counts after, in an `escaped` outcome and a
 * run.post that carries the post-snapshot, so `blame` gives those changes to this run.
 * Other sessions' writes in the same window are in these deltas too; the outcome says so.
 */
export interface EscapeInput extends Omit<TransactionInput, 'prepared'> {
  readonly xid: string;
  readonly lsn: string;
  readonly trust: 'role' | 'superuser';
  readonly timings: Record<string, number>;
  readonly error: unknown;
}

export interface RecordedEscape {
  readonly outcome: RunOutcomeBody;
  readonly post: Snapshot;
}

export async function recordEscape(input: EscapeInput): Promise<RecordedEscape> {
  const watched = watchedTableKeys(input.script, input.config);
  const post = await settleAndSnapshot(input, watched);
  const changes = changesBetween(input.pre, post);
  const inTxCounts = Object.fromEntries([...watched].filter((t) => post.tables[t]).map((t) => [t, post.tables[t]!.rows]));
  const escaped: Violation = {
    object: 'transaction',
    rule: 'escaped',
    detail:
      'the script ended the guarded transaction itself (COMMIT, or a procedure that commits); what it did is committed and was measured afterwards from the statistics, which include any other session writing at the same time',
  };
  const judged = evaluateGuards({
    script: input.script,
    criticalTables: input.config.criticalTables,
    changes,
    countsBefore: Object.fromEntries(Object.entries(input.pre.tables).map(([k, s]) => [k, s.rows])),
    countsAfter: inTxCounts,
  });
  const outcome: RunOutcomeBody = {
    status: 'escaped',
    changes,
    inTxCounts,
    violations: [escaped, ...judged],
    error: input.error
      ? toRunError(input.error, input.script)
      : { message: 'The script ended the guarded transaction itself; its changes are committed.' },
    timingsMs: input.timings,
    xid: input.xid,
    walLsnStart: input.lsn,
    sequencesUsed: [],
    drift: input.drift,
    trust: input.trust,
  };
  await input.audit.append('run.outcome', outcome, { runId: input.runId });
  const { rows } = await sql<{ lsn: string }>`select pg_catalog.pg_current_wal_insert_lsn()::text as lsn`.execute(input.db);
  await input.audit.append(
    'run.post',
    { status: 'escaped', snapshot: post, commitLsn: onlyRow(rows).lsn, xid: input.xid },
    { runId: input.runId },
  );
  return { outcome, post };
}

/**
 * The caller has closed whatever the script left open; make its session flush its counters now
 * (PostgreSQL 15+), so the post-snapshot's cumulative statistics include its writes.
 */
async function settleAndSnapshot(input: EscapeInput, exactTables: ReadonlySet<TableKey>): Promise<Snapshot> {
  await sql`select pg_catalog.pg_stat_force_next_flush()`.execute(input.scriptDb).catch(() => {});
  const { snapshot } = await takeSnapshot(input.db, {
    exactTables,
    exactCountThreshold: input.config.exactCountThreshold,
  });
  return snapshot;
}

function changesBetween(pre: Snapshot, post: Snapshot): Record<TableKey, TableChange> {
  const changes: Record<TableKey, TableChange> = {};
  for (const key of new Set([...Object.keys(pre.tables), ...Object.keys(post.tables)])) {
    const a = pre.tables[key];
    const b = post.tables[key];
    const delta = (f: 'n_tup_ins' | 'n_tup_upd' | 'n_tup_del'): number => Math.max(0, (b?.counters?.[f] ?? 0) - (a?.counters?.[f] ?? 0));
    const truncated = !!a && !!b && a.relfilenode !== b.relfilenode && a.fingerprint === b.fingerprint;
    const ddl = !a || !b || a.fingerprint !== b.fingerprint;
    const change: TableChange = {
      inserted: delta('n_tup_ins'),
      updated: delta('n_tup_upd'),
      deleted: delta('n_tup_del'),
      truncated,
      ...(ddl ? { ddl: true } : {}),
    };
    if (change.inserted || change.updated || change.deleted || change.truncated || change.ddl) changes[key] = change;
  }
  return changes;
}
