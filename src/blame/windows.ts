import { lsnAtOrAfter } from './lsn.js';
import type { TableObservation } from '../history/observations.js';
import type { ResolvedStatus } from '../history/run-status.js';
import type { RunSummary } from '../history/runs.js';

/**
 * Which window between two consecutive observations holds each run's effect.
 *
 * Normally a run's window is (its pre-snapshot, its post-snapshot). When a cron `snapshot`
 * lands between the two, the COMMIT is after the outcome entry, so the window is the first
 * one that ends after the outcome and at or past the commit LSN (the post itself at the
 * latest). A run that never committed still sits in a window: its counters count the
 * attempts it rolled back, and the attribution must subtract them.
 */
export interface RunFacts {
  readonly run: RunSummary;
  readonly status: ResolvedStatus;
}

/** Window i is (observations[i-1], observations[i]); the result maps i to its runs. */
export function assignRunsToWindows(observations: readonly TableObservation[], runs: readonly RunFacts[]): Map<number, RunFacts[]> {
  const windows = new Map<number, RunFacts[]>();
  const seqOf = (i: number): number => observations[i]!.ref.seq ?? Number.POSITIVE_INFINITY;
  for (const facts of runs) {
    const outcome = facts.run.outcome;
    if (!outcome?.ref.seq) continue;
    let j = firstIndexAfter(observations.length, seqOf, outcome.ref.seq);
    if (j < 1) continue;
    const post = facts.run.post;
    if (post) {
      while (
        j < observations.length - 1 &&
        observations[j]!.ref.seq !== post.ref.seq &&
        !lsnAtOrAfter(observations[j]!.walLsn, post.commitLsn)
      )
        j++;
    }
    const list = windows.get(j) ?? [];
    list.push(facts);
    windows.set(j, list);
  }
  return windows;
}

/** Binary search: observations are in seq order and there are tens of thousands of them. */
function firstIndexAfter(length: number, seqOf: (i: number) => number, seq: number): number {
  let lo = 0;
  let hi = length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (seqOf(mid) > seq) hi = mid;
    else lo = mid + 1;
  }
  return lo < length ? lo : -1;
}
