import type { Config } from '../config/config.js';
import type { CounterDelta, DriftFinding, Snapshot, TableKey } from '../records/index.js';
import { countersWentBackwards, sameDatabase } from './counters.js';
import { countFindings, criticalFindings, schemaFindings } from './diff-tables.js';

/**
 * What changed between the previous signed observation of a database and now. `check`
 * prints it; the guarded run records it in RunOutcomeBody.drift, so the evidence says what
 * happened *outside* guarded runs before each one.
 *
 * Findings come in reading order: first whether the two snapshots describe the same
 * database and statistics epoch (which decides how the rest can be read), then the tables.
 * A change to what a finding is must bump SCAN_FORMAT (history/checkpoint.ts), or a check
 * resumed from an older checkpoint keeps the old answer for the entries before it.
 */
export function diffSnapshots(
  previous: Snapshot,
  live: Snapshot,
  config: Pick<Config, 'criticalTables'>,
  explained?: ReadonlyMap<TableKey, CounterDelta>,
): DriftFinding[] {
  const recreated = databaseRecreated(previous, live);
  return [
    ...(recreated ? [recreated] : []),
    ...(recreated ? [] : statsReset(previous, live)),
    ...schemaFindings(previous, live),
    ...countFindings(previous, live, recreated !== null, explained),
    ...criticalFindings(previous, live, config.criticalTables),
  ];
}

/**
 * A different oid or system identifier under the same host:port/dbname is a new database
 * (DROP DATABASE + CREATE, or a restored cluster). So is every table having a new oid: that
 * is what `db:reset` (drop the tables, migrate, seed) looks like from the inside.
 */
export function databaseRecreated(previous: Snapshot, live: Snapshot): DriftFinding | null {
  const a = previous.database;
  const b = live.database;
  const before = { oid: a.oid, systemIdentifier: a.systemIdentifier };
  const after = { oid: b.oid, systemIdentifier: b.systemIdentifier };
  if (!sameDatabase(a, b)) {
    const what =
      a.oid !== b.oid ? `database oid ${a.oid} -> ${b.oid}` : `cluster system identifier ${a.systemIdentifier} -> ${b.systemIdentifier}`;
    return { kind: 'db-recreated', before, after, detail: `${b.key} was recreated since the last observation (${what}).` };
  }
  const common = Object.keys(previous.tables).filter((k) => live.tables[k]);
  if (common.length > 0 && common.every((k) => previous.tables[k]!.oid !== live.tables[k]!.oid)) {
    return {
      kind: 'db-recreated',
      before,
      after,
      detail: `Every table of ${b.key} has a new oid (${common.length} tables): the schema was dropped and recreated.`,
    };
  }
  return null;
}

/** Counters that went backwards cannot be compared; say so instead of reporting negative deltas. */
function statsReset(previous: Snapshot, live: Snapshot): DriftFinding[] {
  const a = previous.database.statsReset;
  const b = live.database.statsReset;
  if (a !== b) {
    return [
      {
        kind: 'stats-reset',
        before: a,
        after: b,
        detail: `Statistics were reset at ${b ?? 'an unknown time'} (before: ${a ?? 'never'}); counter deltas across it are not comparable.`,
      },
    ];
  }
  const backwards = Object.keys(live.tables).filter((k) => {
    const p = previous.tables[k];
    const l = live.tables[k]!;
    return p?.counters && l.counters && p.oid === l.oid && countersWentBackwards(p.counters, l.counters);
  });
  if (!backwards.length) return [];
  const restarted = previous.database.postmasterStart !== live.database.postmasterStart;
  return [
    {
      kind: 'stats-reset',
      before: previous.database.postmasterStart,
      after: live.database.postmasterStart,
      detail: `Counters went backwards on ${backwards.join(', ')}${restarted ? ` (the server restarted at ${live.database.postmasterStart}, e.g. after a crash)` : ''}.`,
    },
  ];
}
