import { createHash } from 'node:crypto';
import type { Config } from '../config/config.js';
import type { Db } from '../db/connection.js';
import { readEntries, type OnSkipped } from '../audit/read.js';
import type { AckBody, AuditRecord, CounterDelta, DriftFinding, Snapshot, TableKey } from '../records/index.js';
import { diffSnapshots } from '../snapshot/diff.js';
import { liveRef, refOf, type EntryRef, type LoggedRef } from './entry-ref.js';
import { interruptedRunFindings, isOpen } from './interrupted.js';
import { snapshotOf, type Observation } from './observations.js';
import { readLiveFacts } from './run-status.js';
import { isStarted, RunCollector } from './runs.js';

/** A drift finding with what makes it answerable: a stable id and when it was first seen. */
export type OpenFinding = DriftFinding & {
  /** `<kind>-<8 hex>`: the same finding gets the same id on every check, until it is acknowledged. */
  readonly id: string;
  /** The observation it was first seen in (`now` when only the live database shows it so far). */
  readonly firstSeen: EntryRef;
  /** The last observation before it, where it was not there yet (null for an interrupted run). */
  readonly since: LoggedRef | null;
};

export interface FindingsScan {
  /** Open (not acknowledged) findings, oldest first. */
  readonly open: readonly OpenFinding[];
  /** Acknowledged findings of this database, by id. */
  readonly acked: ReadonlyMap<string, AckBody>;
  /** The newest signed observation of the database; null when the log has none. */
  readonly newest: Observation | null;
  readonly entriesRead: number;
}

/**
 * Every finding the log and the live database show for one database, minus those an `ack`
 * answered. Consecutive observations are compared pairwise, so a later observation (a cron
 * snapshot, a dry run, an exec) never hides what happened before it: only an ack closes a
 * finding. Inside a committed run's bracket the changes are the run's own, signed in its
 * outcome; inside an exec's, only critical tables and a recreated database are findings
 * (everything else it did is in its own exec.outcome).
 */
export async function scanFindings(
  config: Pick<Config, 'evidenceDir' | 'criticalTables'>,
  live: Snapshot,
  db: Db | null,
  onSkipped: OnSkipped,
): Promise<FindingsScan> {
  const key = live.database.key;
  const runs = new RunCollector();
  const found = new Map<string, OpenFinding>();
  const acked = new Map<string, AckBody>();
  let previous: Observation | null = null;
  // Writes of runs that rolled back since `previous`: the counters count them, the table does not hold them.
  let explained = new Map<TableKey, CounterDelta>();
  let entriesRead = 0;
  const judge = (to: Snapshot, ref: EntryRef, window: Window): void => {
    if (!previous) return;
    for (const finding of inWindow(diffSnapshots(previous.snapshot, to, config, explained), window)) {
      const id = findingId(key, finding, previous.ref);
      if (!found.has(id)) found.set(id, { ...finding, id, firstSeen: ref, since: previous.ref });
    }
  };

  for await (const entry of readEntries(config.evidenceDir, onSkipped)) {
    entriesRead++;
    runs.add(entry);
    if (entry.kind === 'ack' && entry.body.database === key) acked.set(entry.body.finding, entry.body);
    if (entry.kind === 'run.outcome' && entry.body.status !== 'committing' && runs.get(entry.runId ?? '')?.intent?.databaseKey === key) {
      explained = addChanges(explained, entry.body.changes);
    }
    const snapshot = snapshotOf(entry);
    if (snapshot?.database.key !== key) continue;
    judge(snapshot, refOf(entry), windowOf(entry));
    previous = { ref: refOf(entry), snapshot };
    explained = new Map();
  }
  const newest = previous;
  judge(live, liveRef(live.takenAt), 'outside');

  const open = runs.runs.filter(isStarted).filter((r) => r.intent.databaseKey === key && isOpen(r));
  const facts = db && open.length ? await readLiveFacts(db, live.database, open) : null;
  interruptedRunFindings(open, facts).forEach((finding, i) => {
    const id = findingId(key, finding, null);
    found.set(id, { ...finding, id, firstSeen: open[i]!.intent.ref, since: null });
  });

  return { open: [...found.values()].filter((f) => !acked.has(f.id)), acked, newest, entriesRead };
}

type Window = 'outside' | 'run' | 'exec';

function windowOf(entry: AuditRecord): Window {
  if (entry.kind === 'run.post') return 'run';
  if (entry.kind === 'exec.outcome') return 'exec';
  return 'outside';
}

function inWindow(findings: readonly DriftFinding[], window: Window): DriftFinding[] {
  if (window === 'run') return [];
  if (window === 'exec') return findings.filter((f) => f.kind.startsWith('critical-') || f.kind === 'db-recreated');
  return [...findings];
}

/**
 * Stable across checks: what the finding is about (kind, table or run) and the observation
 * it is measured from. Short enough to type, and free of anything a shell would mangle.
 */
export function findingId(databaseKey: string, finding: DriftFinding, since: LoggedRef | null): string {
  const subject = finding.table ?? finding.runId ?? '';
  const hash = createHash('sha256')
    .update([databaseKey, finding.kind, subject, since ? `${since.seq}:${since.hash}` : ''].join('\n'))
    .digest('hex');
  return `${finding.kind}-${hash.slice(0, 8)}`;
}

function addChanges(
  into: Map<TableKey, CounterDelta>,
  changes: Readonly<Record<TableKey, { inserted: number; updated: number; deleted: number }>>,
): Map<TableKey, CounterDelta> {
  for (const [table, c] of Object.entries(changes)) {
    const known = into.get(table) ?? { inserted: 0, updated: 0, deleted: 0 };
    into.set(table, { inserted: known.inserted + c.inserted, updated: known.updated + c.updated, deleted: known.deleted + c.deleted });
  }
  return into;
}
