import type { DriftFinding } from '../records/index.js';
import { resolveStatus, type LiveFacts } from './run-status.js';
import { isStarted, type RunSummary, type StartedRun } from './runs.js';

/**
 * Runs that never finished their story in the log: an intent with no outcome (the process
 * was killed), or a `committing` outcome with no run.post (it died around COMMIT).
 */
export interface InterruptedRunFinding extends DriftFinding {
  readonly kind: 'interrupted-run';
  readonly runId: string;
  readonly script: string;
  readonly status: string;
}

export function isOpen(run: RunSummary): boolean {
  if (!run.intent || run.post || run.commitFailed) return false;
  return !run.outcome || run.outcome.status === 'committing';
}

/**
 * The open runs of one database that no later run has settled. Once a later run on the
 * same database has written its outcome, that run has reported the interruption in its own
 * drift, so `check` stops repeating it (cron would otherwise stay red forever); `log` and
 * `show` keep showing the run as interrupted.
 */
export function unsettledOpenRuns(runs: readonly RunSummary[], databaseKey: string): StartedRun[] {
  const mine = runs.filter(isStarted).filter((r) => r.intent.databaseKey === databaseKey);
  const settledAt = Math.max(0, ...mine.flatMap((r) => (!isOpen(r) && r.outcome ? [r.outcome.ref.seq] : [])));
  // In log order, whichever direction the log was read in.
  return mine.filter((r) => isOpen(r) && r.intent.ref.seq > settledAt).sort((a, b) => a.intent.ref.seq - b.intent.ref.seq);
}

export function interruptedRunFindings(open: readonly StartedRun[], live: LiveFacts | null): InterruptedRunFinding[] {
  return open.map((run) => {
    const intent = run.intent;
    const resolved = resolveStatus(run, live);
    const who = `Run ${run.runId} (${intent.script}, intent #${intent.ref.seq} at ${intent.ref.ts})`;
    const detail = run.outcome
      ? `${who} reached COMMIT (outcome #${run.outcome.ref.seq}: committing) but has no run.post entry; ${resolved.note ?? resolved.status}.`
      : resolved.status === 'running'
        ? `${who} has no outcome; ${resolved.note}. If its process is gone, the server is still executing its statement: nothing can commit without an outcome entry.`
        : `${who} has an intent but no outcome: the process was killed. Nothing was committed (the outcome entry is written before COMMIT); its backup is ${intent.backup.path ?? 'not available'}.`;
    return {
      kind: 'interrupted-run',
      runId: run.runId,
      script: intent.script,
      status: resolved.status,
      before: `#${intent.ref.seq} run.intent`,
      after: resolved.status,
      detail,
    };
  });
}
