import type { Config } from '../config/config.js';
import type { CounterDelta, DriftFinding, Snapshot, TableKey, TableState } from '../records/index.js';
import { counterDelta, formatDelta, isZeroDelta } from './counters.js';

/** A count-changed finding also carries the counter deltas, so a delete reads as a delete. */
export interface CountChangedFinding extends DriftFinding {
  readonly kind: 'count-changed';
  readonly deltas: CounterDelta | null;
  readonly rowsKind: 'exact' | 'estimate';
}

export function schemaFindings(previous: Snapshot, live: Snapshot): DriftFinding[] {
  const findings: DriftFinding[] = [];
  for (const key of unionKeys(previous, live)) {
    const a = previous.tables[key];
    const b = live.tables[key];
    if (a && !b)
      findings.push({
        kind: 'schema-changed',
        table: key,
        before: a.fingerprint,
        after: null,
        detail: `${key} was dropped (it had ${a.rows} rows).`,
      });
    else if (!a && b)
      findings.push({
        kind: 'schema-changed',
        table: key,
        before: null,
        after: b.fingerprint,
        detail: `${key} was created (${b.rows} rows now).`,
      });
    else if (a && b && a.fingerprint !== b.fingerprint) {
      findings.push({
        kind: 'schema-changed',
        table: key,
        before: a.fingerprint,
        after: b.fingerprint,
        detail: `${key} changed shape (columns, types, constraints or indexes).`,
      });
    } else if (a?.behaviourFingerprint && b?.behaviourFingerprint && a.behaviourFingerprint !== b.behaviourFingerprint) {
      findings.push({
        kind: 'schema-changed',
        table: key,
        before: a.behaviourFingerprint,
        after: b.behaviourFingerprint,
        detail: `${key}: its triggers (or their enabled state), rules, policies, row security, privileges or owner changed.`,
      });
    }
  }
  return findings;
}

/**
 * Exact counts are compared as they are. An estimate moves with ANALYZE and autovacuum on
 * their own, so for an estimated table the counters decide: it changed when n_tup_ins, upd
 * or del moved (beyond what `explained` accounts for: writes of runs that rolled back, which
 * the counters still count) or its storage was replaced (TRUNCATE, rewrite), whether or not
 * the estimate moved; an estimate refresh alone is never a change. Only when the counters
 * cannot tell (database recreated, stats reset) does a moved estimate count.
 */
export function countFindings(
  previous: Snapshot,
  live: Snapshot,
  recreated: boolean,
  explained: ReadonlyMap<TableKey, CounterDelta> = new Map(),
): CountChangedFinding[] {
  const findings: CountChangedFinding[] = [];
  for (const key of unionKeys(previous, live)) {
    const a = previous.tables[key];
    const b = live.tables[key];
    if (!a || !b) continue;
    const deltas = recreated ? null : counterDelta(previous.database, a, live.database, b);
    const exact = a.rowsKind === 'exact' && b.rowsKind === 'exact';
    // TRUNCATE moves no counter; a new relfilenode under the same oid is what gives it away.
    const newStorage = !recreated && a.oid === b.oid && a.kind === 'table' && a.relfilenode !== b.relfilenode;
    if (!estimatedTableChanged(a.rows, b.rows, exact, deltas && unexplained(deltas, explained.get(key)), newStorage)) continue;
    findings.push({
      kind: 'count-changed',
      table: key,
      before: a.rows,
      after: b.rows,
      deltas,
      rowsKind: exact ? 'exact' : 'estimate',
      detail: `${key}: ${countText(a.rows, b.rows, exact)} (${recreated ? 'counters not comparable: database recreated' : formatDelta(deltas)})${newStorage ? '; new relfilenode: TRUNCATE or a table rewrite' : ''}.`,
    });
  }
  return findings;
}

/**
 * "8 -> 0 rows". An estimate that did not move says nothing either way (it may be stale, or
 * the writes were updates), so the counters that follow are what the finding rests on.
 */
function countText(before: number, after: number, exact: boolean): string {
  if (exact) return `${before} -> ${after} rows`;
  return before === after ? `${after} rows (estimate), unchanged, but the counters moved` : `${before} -> ${after} rows (estimate)`;
}

/** True when the table changed (see countFindings); `deltas` is null when the counters are not comparable. */
export function estimatedTableChanged(
  before: number,
  after: number,
  exact: boolean,
  deltas: CounterDelta | null,
  newStorage: boolean,
): boolean {
  if (exact || deltas === null) return before !== after;
  return newStorage || !isZeroDelta(deltas);
}

function unexplained(d: CounterDelta, known: CounterDelta | undefined): CounterDelta {
  if (!known) return d;
  const left = (n: number, k: number): number => Math.max(0, n - k);
  return { inserted: left(d.inserted, known.inserted), updated: left(d.updated, known.updated), deleted: left(d.deleted, known.deleted) };
}

/** The config's critical tables: an emptied one is reported on its own, a partial loss against maxDropPercent. */
export function criticalFindings(previous: Snapshot, live: Snapshot, critical: Config['criticalTables']): DriftFinding[] {
  const findings: DriftFinding[] = [];
  for (const [key, rule] of Object.entries(critical)) {
    const a: TableState | undefined = previous.tables[key];
    const b: TableState | undefined = live.tables[key];
    if (!a || a.rows === 0) continue;
    if (!b) {
      findings.push({
        kind: 'critical-empty',
        table: key,
        before: a.rows,
        after: null,
        detail: `Critical table ${key} no longer exists (it had ${a.rows} rows).`,
      });
    } else if (b.rows === 0) {
      findings.push({
        kind: 'critical-empty',
        table: key,
        before: a.rows,
        after: 0,
        detail: `Critical table ${key} is empty (it had ${a.rows} rows).`,
      });
    } else {
      const dropPercent = ((a.rows - b.rows) / a.rows) * 100;
      if (dropPercent > rule.maxDropPercent) {
        findings.push({
          kind: 'critical-drop',
          table: key,
          before: a.rows,
          after: b.rows,
          detail: `Critical table ${key} dropped by ${dropPercent.toFixed(1)}% (${a.rows} -> ${b.rows}); the limit is ${rule.maxDropPercent}%.`,
        });
      }
    }
  }
  return findings;
}

function unionKeys(a: Snapshot, b: Snapshot): TableKey[] {
  return [...new Set([...Object.keys(a.tables), ...Object.keys(b.tables)])].sort();
}
