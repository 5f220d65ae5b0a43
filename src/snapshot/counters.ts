import type { CounterDelta, DatabaseIdentity, TableCounters, TableState } from '../records/index.js';

/**
 * Cumulative pg_stat_user_tables counters only mean something as a difference between two
 * readings of the same table in the same statistics epoch. These helpers decide whether two
 * readings are comparable and what moved between them.
 */
/** The subset of a database identity that decides whether two observations share history. */
export type IdentityFacts = Pick<DatabaseIdentity, 'key' | 'oid' | 'systemIdentifier' | 'statsReset' | 'postmasterStart'>;

export function sameDatabase(a: IdentityFacts, b: IdentityFacts): boolean {
  if (a.oid !== b.oid) return false;
  // A null identifier means the role could not read pg_control_system(); not a difference.
  return a.systemIdentifier === null || b.systemIdentifier === null || a.systemIdentifier === b.systemIdentifier;
}

export function countersWentBackwards(a: TableCounters, b: TableCounters): boolean {
  return b.n_tup_ins < a.n_tup_ins || b.n_tup_upd < a.n_tup_upd || b.n_tup_del < a.n_tup_del;
}

type TableFacts = Pick<TableState, 'oid' | 'counters'>;

/** Null when the readings do not share a history (recreated table or database, stats reset). */
export function counterDelta(dbA: IdentityFacts, a: TableFacts | null, dbB: IdentityFacts, b: TableFacts | null): CounterDelta | null {
  if (!a?.counters || !b?.counters) return null;
  if (!sameDatabase(dbA, dbB) || a.oid !== b.oid || dbA.statsReset !== dbB.statsReset) return null;
  if (countersWentBackwards(a.counters, b.counters)) return null;
  return {
    inserted: b.counters.n_tup_ins - a.counters.n_tup_ins,
    updated: b.counters.n_tup_upd - a.counters.n_tup_upd,
    deleted: b.counters.n_tup_del - a.counters.n_tup_del,
  };
}

export function isZeroDelta(d: CounterDelta): boolean {
  return d.inserted === 0 && d.updated === 0 && d.deleted === 0;
}

export function formatDelta(d: CounterDelta | null): string {
  if (!d) return 'counters not comparable';
  return `n_tup_ins +${d.inserted}, n_tup_upd +${d.updated}, n_tup_del +${d.deleted}`;
}
