import { isOutside } from '../blame/attribute.js';
import type { BlameAnalysis } from '../blame/blame.js';
import type { RunFacts } from '../blame/windows.js';
import { shortName } from '../blame/verdict.js';

/**
 * What the report's chart shows, decided here and drawn by svg.ts: the table's row count at
 * each signed observation, the guarded runs on the database as marks, and the windows in
 * which rows changed outside any run's own transaction. Times are the entries' own `ts`, the
 * same strings the timeline and the evidence table print.
 */
export interface ChartPoint {
  readonly ts: string;
  readonly rows: number | null;
  readonly estimate: boolean;
  /** `#12 run.post` or `now`, for the point's tooltip. */
  readonly label: string;
}

/** committed: its changes are in the database; dry-run: always rolled back; not-committed: rolled back or failed. */
export type RunMarkKind = 'committed' | 'dry-run' | 'not-committed';

export interface RunMark {
  readonly start: string;
  readonly end: string;
  readonly kind: RunMarkKind;
  readonly runId: string;
  /** `cleanup-invalid-sessions`, `dry run: cleanup-invalid-sessions`, `guard-violation: purge`. */
  readonly label: string;
  /** Whether its own transaction changed this table. */
  readonly changedTable: boolean;
}

export interface OutsideWindow {
  readonly from: string;
  readonly to: string;
  /** `8 → 0`. */
  readonly label: string;
  /** Inside a run's bracket but not its own transaction: another session wrote while it ran. */
  readonly concurrent: boolean;
}

export interface ChartModel {
  readonly table: string;
  readonly points: readonly ChartPoint[];
  readonly runs: readonly RunMark[];
  readonly outside: readonly OutsideWindow[];
  /** Set when the chart leaves part of the history out. */
  readonly note: string | null;
}

/** Beyond these the chart keeps the most recent part: a post-mortem is about the latest change. */
const MAX_POINTS = 400;
const MAX_RUNS = 60;

export function tableChart(a: Pick<BlameAnalysis, 'table' | 'observations' | 'runs' | 'changes'>): ChartModel {
  const all = a.observations.map((o) => ({
    ts: o.ts,
    rows: o.rows,
    estimate: o.rowsKind === 'estimate',
    label: o.seq === null ? 'now' : `#${o.seq} ${o.kind}`,
  }));
  const points = all.length > MAX_POINTS ? keepTurns(all).slice(-MAX_POINTS) : all;
  const since = points[0]?.ts ?? '';
  const runs = a.runs
    .map(runMark(a.table))
    .filter((r): r is RunMark => r !== null && r.end >= since)
    .slice(-MAX_RUNS);
  const outside = a.changes
    .filter((c) => isOutside(c.attribution) && c.toTs >= since)
    .map((c) => ({
      from: c.fromTs,
      to: c.toTs,
      label: `${rows(c.before)} → ${rows(c.after)}`,
      concurrent: c.attribution.type === 'concurrent',
    }));
  const left = all.length - points.length;
  return {
    table: shortName(a.table),
    points,
    runs,
    outside,
    note:
      left > 0
        ? `${left} of ${all.length} observations are not drawn: flat stretches are drawn from their two ends, from ${since} on.`
        : null,
  };
}

/**
 * A flat stretch needs only its two ends to draw the same line, so a log of 10,000 runs
 * that never changed the table stays a handful of points.
 */
function keepTurns<T extends { readonly rows: number | null }>(points: readonly T[]): T[] {
  return points.filter((p, i) => i === 0 || i === points.length - 1 || points[i - 1]!.rows !== p.rows || points[i + 1]!.rows !== p.rows);
}

function runMark(table: string): (r: RunFacts) => RunMark | null {
  return ({ run, status }) => {
    if (!run.intent) return null;
    const end = run.post?.ref.ts ?? run.outcome?.ref.ts ?? run.intent.ref.ts;
    const kind: RunMarkKind = run.intent.dryRun ? 'dry-run' : status.committed ? 'committed' : 'not-committed';
    const prefix = kind === 'dry-run' ? 'dry run: ' : kind === 'not-committed' ? `${status.status}: ` : '';
    return {
      start: run.intent.ref.ts,
      end,
      kind,
      runId: run.runId,
      // The full run id is in the mark's tooltip and the runs table; a label stays short enough not to collide.
      label: `${prefix}${run.intent.script}`,
      changedTable: !!run.outcome?.changes[table] && kind === 'committed',
    };
  };
}

function rows(n: number | null): string {
  return n === null ? 'none' : String(n);
}
