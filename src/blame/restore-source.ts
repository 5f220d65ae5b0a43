import type { TableKey } from '../records/index.js';
import type { BlameChange } from './attribute.js';
import type { ExecSummary } from '../history/exec-runs.js';
import type { TableObservation } from '../history/observations.js';
import type { RunFacts } from './windows.js';
import { suggest } from '../shell-quote.js';

/**
 * The backup to restore a table from: the newest verified backup that holds the table and
 * was taken before the loss, with rows in it. Every guarded run's backup is taken on the
 * pre-snapshot's exported snapshot, so its row count is exactly the pre-count.
 */
export interface RestoreSource {
  readonly runId: string;
  readonly script: string;
  readonly ts: string;
  readonly path: string;
  readonly sha256: string | null;
  readonly rows: number | null;
  readonly command: string;
}

interface Candidate {
  readonly runId: string;
  readonly name: string;
  readonly ref: { readonly seq: number | null; readonly ts: string };
  readonly backup: {
    readonly status: string;
    readonly scope: string;
    readonly path: string | null;
    readonly sha256: string | null;
    readonly tables: readonly TableKey[];
  };
}

/** Guarded runs and `exec` runs both leave a verified backup taken on their pre-snapshot. */
export function findRestoreSource(
  table: TableKey,
  runs: readonly RunFacts[],
  observations: readonly TableObservation[],
  loss: BlameChange | null,
  execs: readonly ExecSummary[] = [],
): RestoreSource | null {
  const candidates: Candidate[] = [
    ...runs.flatMap(({ run }) =>
      run.intent ? [{ runId: run.runId, name: run.intent.script, ref: run.intent.ref, backup: run.intent.backup }] : [],
    ),
    ...execs.map((e) => ({ runId: e.runId, name: e.intent.name, ref: e.intent.ref, backup: e.intent.backup })),
  ];
  const lossFrom = loss && (loss.after ?? 0) < (loss.before ?? 0) ? (loss.fromSeq ?? Number.POSITIVE_INFINITY) : Number.POSITIVE_INFINITY;
  const preRows = new Map<string, number | null>();
  for (const o of observations)
    if ((o.ref.kind === 'run.intent' || o.ref.kind === 'exec.intent') && o.ref.runId) preRows.set(o.ref.runId, o.table?.rows ?? null);
  let best: RestoreSource | null = null;
  let bestSeq = -1;
  for (const c of candidates) {
    const b = c.backup;
    if (b.status !== 'verified' || !b.path) continue;
    if (b.scope !== 'full' && !b.tables.includes(table)) continue;
    const seq = c.ref.seq ?? 0;
    const rows = preRows.get(c.runId) ?? null;
    if (seq > lossFrom || seq < bestSeq) continue;
    // Before a loss, a backup holding no rows of the table would restore nothing.
    if (lossFrom !== Number.POSITIVE_INFINITY && rows === 0) continue;
    best = {
      runId: c.runId,
      script: c.name,
      ts: c.ref.ts,
      path: b.path,
      sha256: b.sha256,
      rows,
      command: suggest('restore', c.runId, '--table', table),
    };
    bestSeq = seq;
  }
  return best;
}
