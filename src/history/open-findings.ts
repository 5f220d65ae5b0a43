import { createHash } from 'node:crypto';
import type { Config } from '../config/config.js';
import type { Db } from '../db/connection.js';
import { readPlacedEntries, recordOrSkip, type OnSkipped, type SkippedEntry } from '../audit/read.js';
import type { AuditEntry } from '../audit/types.js';
import { silentLogger, type Logger } from '../logger.js';
import type { AckBody, AuditRecord, CounterDelta, DriftFinding, Snapshot, TableKey } from '../records/index.js';
import { diffSnapshots } from '../snapshot/diff.js';
import { liveRef, refOf, type EntryRef, type LoggedRef } from './entry-ref.js';
import { interruptedRunFindings, isOpen } from './interrupted.js';
import { snapshotOf, type Observation } from './observations.js';
import type { SealRecord } from '../ledger/findings.js';
import { readLiveFacts } from './run-status.js';
import { isStarted, RunCollector, type RunSummary, type StartedRun } from './runs.js';
import { loadCheckpoint, saveCheckpoint, type CheckpointScope, type ScanState, type SkippedNote } from './checkpoint.js';

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
  /** This database's `ledger.seal` entries, for the ledger's own findings. */
  readonly seals: readonly SealRecord[];
}

/**
 * Every finding the log and the live database show for one database, minus those an `ack`
 * answered. Consecutive observations are compared pairwise, so a later observation (a cron
 * snapshot, a dry run, an exec) never hides what happened before it: only an ack closes a
 * finding. Inside a committed run's bracket the changes are the run's own, signed in its
 * outcome; inside an exec's, only critical tables and a recreated database are findings
 * (everything else it did is in its own exec.outcome).
 *
 * With a checkpoint scope, the scan starts from the state the last check left (checkpoint.ts)
 * and reads only the entries after it, then leaves the state at the new last entry.
 */
export async function scanFindings(
  config: Pick<Config, 'evidenceDir' | 'criticalTables'>,
  live: Snapshot,
  db: Db | null,
  options: { readonly onSkipped: OnSkipped; readonly checkpoint?: CheckpointScope | null; readonly log?: Pick<Logger, 'debug'> },
): Promise<FindingsScan> {
  const key = live.database.key;
  const log = options.log ?? silentLogger;
  const resumed = options.checkpoint ? await loadCheckpoint(options.checkpoint, log) : null;
  const scan = new Scan(key, config, resumed?.state ?? null);
  for (const note of resumed?.state.skipped ?? []) options.onSkipped(skippedOf(note));
  let through = resumed?.through ?? null;
  let read = 0;
  for await (const { entry, place } of readPlacedEntries(config.evidenceDir, resumed?.through ?? null)) {
    read++;
    scan.add(entry, options.onSkipped);
    through = place && { ...place, hash: entry.hash };
  }
  log.debug('check read the log', { resumedAfter: resumed?.through.seq ?? null, entriesRead: read });
  if (options.checkpoint && read && through) await saveCheckpoint(options.checkpoint, through, scan.state(), log);

  const newest = scan.previous;
  scan.judge(live, liveRef(live.takenAt), 'outside');
  const interrupted = scan.openRuns();
  const facts = db && interrupted.length ? await readLiveFacts(db, live.database, interrupted) : null;
  interruptedRunFindings(interrupted, facts).forEach((finding, i) => {
    const id = findingId(key, finding, null);
    scan.found.set(id, { ...finding, id, firstSeen: interrupted[i]!.intent.ref, since: null });
  });
  const acked = scan.acked;
  const open = [...scan.found.values()].filter((f) => !acked.has(f.id));
  return { open, acked, newest, entriesRead: scan.entriesRead, seals: scan.seals };
}

/** The scan's state between two entries: what checkpoint.ts stores and restores. */
class Scan {
  readonly found: Map<string, OpenFinding>;
  readonly acked: Map<string, AckBody>;
  previous: Observation | null;
  /** Writes of runs that rolled back since `previous`: the counters count them, the table does not hold them. */
  private explained: Map<TableKey, CounterDelta>;
  private readonly runs: RunCollector;
  private readonly closedRuns: Set<string>;
  private readonly skipped: SkippedNote[];
  readonly seals: SealRecord[];
  entriesRead: number;

  constructor(
    private readonly key: string,
    private readonly config: Pick<Config, 'criticalTables'>,
    state: ScanState | null,
  ) {
    this.found = new Map(state?.found.map((f) => [f.id, f]));
    this.acked = new Map(state?.acked);
    this.previous = state?.previous ?? null;
    this.explained = new Map(state?.explained);
    this.runs = new RunCollector(state?.runs);
    this.closedRuns = new Set(state?.closedRuns);
    this.skipped = [...(state?.skipped ?? [])];
    this.seals = [...(state?.seals ?? [])];
    this.entriesRead = state?.entriesRead ?? 0;
  }

  add(raw: AuditEntry, onSkipped: OnSkipped): void {
    this.entriesRead++;
    const entry = recordOrSkip(raw, (skipped) => {
      this.skipped.push({ seq: raw.seq, kind: raw.kind, reason: skipped.reason, detail: skipped.detail });
      onSkipped(skipped);
    });
    if (!entry) return;
    this.runs.add(entry);
    if (entry.kind === 'ack' && entry.body.database === this.key) this.acked.set(entry.body.finding, entry.body);
    if (entry.kind === 'ledger.seal' && entry.body.database === this.key)
      this.seals.push({ seq: entry.seq, ts: entry.ts, body: entry.body });
    if (entry.kind === 'run.outcome' && entry.body.status !== 'committing' && this.isMine(entry.runId)) {
      this.explained = addChanges(this.explained, entry.body.changes);
    }
    const snapshot = snapshotOf(entry);
    if (snapshot?.database.key !== this.key) return;
    this.judge(snapshot, refOf(entry), windowOf(entry));
    this.previous = { ref: refOf(entry), snapshot };
    this.explained = new Map();
  }

  judge(to: Snapshot, ref: EntryRef, window: Window): void {
    const previous = this.previous;
    if (!previous) return;
    for (const finding of inWindow(diffSnapshots(previous.snapshot, to, this.config, this.explained), window)) {
      const id = findingId(this.key, finding, previous.ref);
      if (!this.found.has(id)) this.found.set(id, { ...finding, id, firstSeen: ref, since: previous.ref });
    }
  }

  /** This database's started runs that never finished their story in the log. */
  openRuns(): StartedRun[] {
    return this.mine().filter(isOpen);
  }

  /** The state after the last entry added, for the next check. Only this database's runs are kept. */
  state(): ScanState {
    const mine = this.mine();
    const closed = (r: RunSummary): boolean => r.post !== null || r.commitFailed !== null;
    return {
      found: [...this.found.values()].filter((f) => !this.acked.has(f.id)),
      acked: [...this.acked],
      previous: this.previous,
      explained: [...this.explained],
      runs: mine.filter((r) => !closed(r)),
      closedRuns: [...this.closedRuns, ...mine.filter(closed).map((r) => r.runId)],
      entriesRead: this.entriesRead,
      skipped: this.skipped,
      seals: this.seals,
    };
  }

  private isMine(runId: string | undefined): boolean {
    return !!runId && (this.closedRuns.has(runId) || this.runs.get(runId)?.intent?.databaseKey === this.key);
  }

  private mine(): StartedRun[] {
    return this.runs.runs.filter(isStarted).filter((r) => r.intent.databaseKey === this.key);
  }
}

function skippedOf(note: SkippedNote): SkippedEntry {
  // The envelope as far as a warning needs it; the body was never kept.
  const entry = { seq: note.seq, kind: note.kind } as AuditEntry;
  return { entry, reason: note.reason, detail: note.detail };
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
