import type { Config } from '../config/config.js';
import type { CounterDelta, DriftFinding, Snapshot, TableKey, TableState } from '../records/index.js';
import { counterDelta, formatDelta } from './counters.js';

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
 * Exact counts are compared as they are. Estimates drift with ANALYZE on their own, and lag
 * behind real deletes until the next one, so an estimated table is judged by its counters:
 * reported when they show inserts or deletes (or a new relfilenode), whether or not the
 * estimate moved, and when the counters cannot tell (the database was recreated) and the
 * estimate moved.
 */
export function countFindings(previous: Snapshot, live: Snapshot, recreated: boolean): CountChangedFinding[] {
  const findings: CountChangedFinding[] = [];
  for (const key of unionKeys(previous, live)) {
    const a = previous.tables[key];
    const b = live.tables[key];
    if (!a || !b) continue;
    const deltas = recreated ? null : counterDelta(previous.database, a, live.database, b);
    const exact = a.rowsKind === 'exact' && b.rowsKind === 'exact';
    // TRUNCATE moves no counter; a new relfilenode under the same oid is what gives it away.
    const newStorage = !recreated && a.oid === b.oid && a.kind === 'table' && a.relfilenode !== b.relfilenode;
    const countersMoved = newStorage || (deltas !== null && deltas.inserted + deltas.deleted > 0);
    if (exact ? a.rows === b.rows : deltas ? !countersMoved : a.rows === b.rows && !newStorage) continue;
    findings.push({
      kind: 'count-changed',
      table: key,
      before: a.rows,
      after: b.rows,
      deltas,
      rowsKind: exact ? 'exact' : 'estimate',
      detail: `${key}: ${a.rows} -> ${b.rows} rows${exact ? '' : ' (estimate)'} (${recreated ? 'counters not comparable: database recreated' : formatDelta(deltas)})${newStorage ? '; new relfilenode: TRUNCATE or a table rewrite' : ''}.`,
    });
  }
  return findings;
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
