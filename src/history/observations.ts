import type { AuditRecord, Snapshot, TableCounters, TableKey } from '../records/index.js';
import type { IdentityFacts } from '../snapshot/counters.js';
import { liveRef, refOf, type EntryRef, type LoggedRef } from './entry-ref.js';

/**
 * An observation is a signed snapshot of a database: a `snapshot` entry, a run's
 * pre-snapshot (run.intent) or post-snapshot (run.post), or any later entry kind whose body
 * carries a `snapshot` (exec.*). A `restore.pitr` fills another cluster and observes nothing
 * of the live one. Observations are matched on snapshot.database.key, so a
 * database that was dropped and recreated under the same name keeps its history.
 */
export function snapshotOf(entry: AuditRecord): Snapshot | null {
  switch (entry.kind) {
    case 'snapshot':
    case 'run.intent':
    case 'run.post':
    case 'exec.intent':
      return entry.body.snapshot;
    case 'exec.outcome':
      return entry.body.snapshot;
    case 'restore':
      return entry.body.snapshot ?? null;
    case 'run.outcome':
    case 'run.commit-failed':
    case 'restore.pitr':
    case 'key.rotate':
    case 'key.add':
    case 'prune':
    case 'ledger.seal':
    case 'ack':
      return null;
  }
}

export interface Observation {
  readonly ref: LoggedRef;
  readonly snapshot: Snapshot;
}

/**
 * One table as one observation saw it: a few numbers instead of the whole snapshot, which
 * is what lets blame walk 10,000 runs in constant memory per observation.
 */
export interface TableObservation {
  readonly ref: EntryRef;
  readonly takenAt: string;
  readonly walLsn: string;
  readonly database: IdentityFacts;
  /** Null when the table did not exist at that moment. */
  readonly table: ObservedTable | null;
}

export interface ObservedTable {
  readonly oid: number;
  readonly relfilenode: number;
  readonly rows: number;
  readonly rowsKind: 'exact' | 'estimate';
  readonly counters: TableCounters | null;
  readonly fingerprint: string;
}

export function observeTable(ref: EntryRef, snapshot: Snapshot, table: TableKey): TableObservation {
  const t = snapshot.tables[table];
  const d = snapshot.database;
  return {
    ref,
    takenAt: snapshot.takenAt,
    walLsn: snapshot.walLsn,
    database: {
      key: d.key,
      oid: d.oid,
      systemIdentifier: d.systemIdentifier,
      statsReset: d.statsReset,
      postmasterStart: d.postmasterStart,
    },
    table: t
      ? { oid: t.oid, relfilenode: t.relfilenode, rows: t.rows, rowsKind: t.rowsKind, counters: t.counters, fingerprint: t.fingerprint }
      : null,
  };
}

export function observeLive(snapshot: Snapshot, table: TableKey): TableObservation {
  return observeTable(liveRef(snapshot.takenAt), snapshot, table);
}

/**
 * Every observation of one table, per database key (blame decides which database it is
 * about only once it knows the live one, or falls back to the newest key).
 */
export class TableObservationCollector {
  private readonly byKey = new Map<string, TableObservation[]>();
  private newestKey: string | null = null;

  constructor(private readonly table: TableKey) {}

  add(entry: AuditRecord): void {
    const snapshot = snapshotOf(entry);
    if (!snapshot) return;
    const key = snapshot.database.key;
    let list = this.byKey.get(key);
    if (!list) this.byKey.set(key, (list = []));
    list.push(observeTable(refOf(entry), snapshot, this.table));
    this.newestKey = key;
  }

  of(databaseKey: string): TableObservation[] {
    return this.byKey.get(databaseKey) ?? [];
  }

  get newestDatabaseKey(): string | null {
    return this.newestKey;
  }

  get databaseKeys(): string[] {
    return [...this.byKey.keys()];
  }
}
