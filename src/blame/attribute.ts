import type { CounterDelta, TableChange, TableKey } from '../records/index.js';
import { counterDelta, isZeroDelta } from '../snapshot/counters.js';
import { describeRef, shortRef } from '../history/entry-ref.js';
import type { TableObservation } from '../history/observations.js';
import { changeOf, isNonZero } from '../history/runs.js';
import { assignRunsToWindows, type RunFacts } from './windows.js';
import { windowEvents, type WindowEvent } from './window-events.js';

/**
 * Blame's core: every change of one table between two consecutive observations goes either
 * to the run whose signed outcome recorded it, with that outcome's exact numbers, or to
 * "outside any guarded run between A and B". A run is only ever given what its own
 * transaction measured; whatever the counts moved beyond that is outside, even inside the
 * run's pre/post bracket (other sessions keep working while a run runs).
 */
export type Attribution =
  | { readonly type: 'run'; readonly runId: string; readonly script: string }
  | { readonly type: 'outside'; readonly after: string; readonly before: string }
  /** Outside the run's own transaction, but while it ran: another session wrote. */
  | { readonly type: 'concurrent'; readonly runId: string; readonly script: string; readonly after: string; readonly before: string }
  /** Named by the change ledger's statements (src/ledger): who, with what, when; during a run when runId is set. */
  | {
      readonly type: 'session';
      readonly statements: readonly SessionStatement[];
      readonly after: string;
      readonly before: string;
      readonly runId?: string;
      readonly script?: string;
    };

/** One ledger statement as blame --json shows it (SPEC "Machine-readable output"). */
export interface SessionStatement {
  readonly ledgerId: number;
  readonly xid: string;
  readonly pid: number;
  /** With the pid, the session: a pid is reused by a later backend (after a restart, or over days). */
  readonly backendStart: string | null;
  /** Set when this change holds statements of another session with the same pid: the text then names each session's start. */
  readonly pidReused?: true;
  readonly role: string;
  readonly outerRole: string | null;
  readonly applicationName: string | null;
  readonly clientAddr: string | null;
  readonly at: string;
  readonly op: string;
  readonly rows: number;
  /** Rows the same transaction deleted from other protected tables (ON DELETE CASCADE, or its own statements). */
  readonly cascaded: number;
  readonly rowsKept: number;
  readonly statement: string | null;
  readonly fingerprint: string | null;
}

/** Changes no run's own transaction recorded: plain outside, or by another session during a run. */
export type OutsideAttribution = Exclude<Attribution, { type: 'run' }>;

export function isOutside(a: Attribution): a is OutsideAttribution {
  return a.type !== 'run';
}

export interface BlameChange {
  /** `#12 run.post` or `now`: the observations the change lies between. */
  readonly from: string;
  readonly to: string;
  readonly fromSeq: number | null;
  readonly toSeq: number | null;
  readonly fromTs: string;
  readonly toTs: string;
  /** Null when the table did not exist. */
  readonly before: number | null;
  readonly after: number | null;
  readonly exact: boolean;
  /** The run's own inserted/updated/deleted (run attribution). */
  readonly change?: TableChange;
  /** Run attribution: the script ended the guarded transaction itself, so the numbers come from statistics afterwards. */
  readonly escaped?: true;
  /** Run attribution: whether the script's session could have switched counting off (see docs/security.md). */
  readonly trust?: 'role' | 'superuser';
  /** What the cumulative counters moved beyond the runs in the window (outside attribution); null when not comparable. */
  readonly counters?: CounterDelta | null;
  readonly events: readonly WindowEvent[];
  readonly attribution: Attribution;
  /** Outside any ledger statement, after the last seal, with the live ledger gone: what was lost with the database. */
  readonly ledgerLost?: string;
  /** The table's ledger triggers were off during the window (disabled or dropped): its statements may not be all. */
  readonly ledgerOff?: readonly LedgerOff[];
}

/** Who switched the table's ledger off, and on again (null: still off). */
export interface LedgerOff {
  readonly off: SessionStatement;
  readonly on: SessionStatement | null;
  /** Rows removed from other protected tables meanwhile: where a cascade from this table shows, with its session. */
  readonly meanwhile: readonly { readonly table: TableKey; readonly statement: SessionStatement }[];
}

const ZERO: CounterDelta = { inserted: 0, updated: 0, deleted: 0 };

/** `names` labels the other entries that carry a run id (exec runs) in the "outside" wording. */
export function attributeChanges(
  table: TableKey,
  observations: readonly TableObservation[],
  runs: readonly RunFacts[],
  names: ReadonlyMap<string, string> = new Map(),
): BlameChange[] {
  const windows = assignRunsToWindows(observations, runs);
  const scriptOf = new Map<string, string | null>([...names, ...runs.map((r) => [r.run.runId, r.run.intent?.script ?? null] as const)]);
  const label = (o: TableObservation): string => describeRef(o.ref, o.ref.runId ? scriptOf.get(o.ref.runId) : null);
  const short = (o: TableObservation): string => shortRef(o.ref);
  const changes: BlameChange[] = [];
  // Counters reach shared statistics late: a run's deletes may only show up in the next
  // window. What the runs did but the counters have not shown yet is carried forward.
  let owed: CounterDelta = ZERO;
  for (let i = 1; i < observations.length; i++) {
    const a = observations[i - 1]!;
    const b = observations[i]!;
    const span = { from: short(a), to: short(b), fromSeq: a.ref.seq, toSeq: b.ref.seq, fromTs: a.ref.ts, toTs: b.ref.ts };
    const exact = a.table?.rowsKind !== 'estimate' && b.table?.rowsKind !== 'estimate';
    const inWindow = windows.get(i) ?? [];
    let current = a.table ? a.table.rows : null;
    let attempted = ZERO;
    for (const facts of inWindow) {
      const change = changeOf(facts.run, table);
      if (!change) continue;
      attempted = add(attempted, change);
      if (!facts.status.committed || !isNonZero(change)) continue;
      const after = runResult(current, change, facts, table);
      changes.push({
        ...span,
        before: current,
        after,
        exact,
        change,
        events: [],
        ...runMarks(facts),
        attribution: { type: 'run', runId: facts.run.runId, script: facts.run.intent?.script ?? '?' },
      });
      current = after;
    }
    const events = windowEvents(a, b);
    const deltas = counterDelta(a.database, a.table, b.database, b.table);
    let residual: CounterDelta | null = null;
    if (deltas) {
      const settled = settle(deltas, add(attempted, owed));
      residual = settled.residual;
      owed = settled.owed;
    } else owed = ZERO;
    const after = b.table ? b.table.rows : null;
    const rowsMoved = (after ?? 0) !== (current ?? 0) || (after === null) !== (current === null);
    // An estimate moves with ANALYZE alone: where the counters compare, they decide (residual).
    const countMoved = exact || residual === null || (after === null) !== (current === null) ? rowsMoved : false;
    const structural = events.some((e) => e !== 'stats-reset');
    if (countMoved || structural || (residual !== null && !isZeroDelta(residual))) {
      // A window that ends by a run's own post-snapshot lies inside the run: what moved beyond the
      // run's own was another session, during it. A dry or rolled-back run has no post, and the
      // next observation may come long after it ended, so its window says nothing about "during".
      const during = inWindow.find((f) => f.run.post && b.ref.seq !== null && b.ref.seq <= f.run.post.ref.seq);
      const attribution: OutsideAttribution = during
        ? { type: 'concurrent', runId: during.run.runId, script: during.run.intent?.script ?? '?', after: label(a), before: label(b) }
        : { type: 'outside', after: label(a), before: label(b) };
      changes.push({ ...span, before: current, after, exact, counters: residual, events, attribution });
    }
  }
  return changes;
}

function runMarks(facts: RunFacts): Pick<BlameChange, 'escaped' | 'trust'> {
  const outcome = facts.run.outcome;
  return { ...(outcome?.status === 'escaped' ? { escaped: true as const } : {}), ...(outcome?.trust ? { trust: outcome.trust } : {}) };
}

/** A TRUNCATE leaves no delete count behind; the in-transaction count says where it ended. */
function runResult(current: number | null, change: TableChange, facts: RunFacts, table: TableKey): number {
  const inTx = facts.run.outcome?.inTxCounts[table];
  if (change.truncated && inTx !== undefined) return inTx;
  return (current ?? 0) + change.inserted - change.deleted;
}

function add(a: CounterDelta, b: Pick<CounterDelta, 'inserted' | 'updated' | 'deleted'>): CounterDelta {
  return { inserted: a.inserted + b.inserted, updated: a.updated + b.updated, deleted: a.deleted + b.deleted };
}

function settle(deltas: CounterDelta, expected: CounterDelta): { residual: CounterDelta; owed: CounterDelta } {
  const part = (k: keyof CounterDelta) => {
    const r = deltas[k] - expected[k];
    return r >= 0 ? { residual: r, owed: 0 } : { residual: 0, owed: -r };
  };
  const ins = part('inserted');
  const upd = part('updated');
  const del = part('deleted');
  return {
    residual: { inserted: ins.residual, updated: upd.residual, deleted: del.residual },
    owed: { inserted: ins.owed, updated: upd.owed, deleted: del.owed },
  };
}
