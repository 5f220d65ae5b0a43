import { sql } from 'kysely';
import type { Db } from '../db/connection.js';
import type { Snapshot, TableChange, TableKey, Violation } from '../records/index.js';

/**
 * Other sessions keep writing while a run runs. Their writes to the watched tables
 * (declared and critical) are measured from the shared statistics, as the cumulative
 * counters now minus the pre-snapshot's, read on the runner's own connection: the
 * script's own counters reach shared statistics only after its transaction ends, so
 * nothing of the run is in there yet.
 *
 * Counters are evidence of a write, never proof that none happened: PostgreSQL 15 flushes
 * a backend's counters at most once a second after its transaction, an idle backend only
 * after 10 s. The outcome says how long the runner watched.
 */
export interface CounterMoves {
  readonly inserted: number;
  readonly updated: number;
  readonly deleted: number;
}

export interface ConcurrentWrites {
  readonly tables: Readonly<Record<TableKey, CounterMoves>>;
  /** From the pre-snapshot to this measurement. */
  readonly observedMs: number;
  readonly note: string;
}

const LAG_NOTE = 'from shared statistics, which other sessions flush up to 1 s (10 s when idle) after their transactions: writes that were not flushed yet are not listed';

export async function readConcurrentWrites(runnerDb: Db, pre: Snapshot, watched: readonly TableKey[]): Promise<ConcurrentWrites> {
  const oids = watched.flatMap((key) => (pre.tables[key]?.counters ? [pre.tables[key]!.oid] : []));
  const { rows } = await sql<{ relid: number; ins: number; upd: number; del: number }>`
    select relid::int8 as relid, n_tup_ins as ins, n_tup_upd as upd, n_tup_del as del
      from pg_catalog.pg_stat_user_tables where relid = any(${oids}::pg_catalog.oid[])`.execute(runnerDb);
  const now = new Map(rows.map((r) => [Number(r.relid), r]));
  const tables: Record<TableKey, CounterMoves> = {};
  for (const key of watched) {
    const before = pre.tables[key];
    const after = before && now.get(before.oid);
    if (!before?.counters || !after) continue;
    const moves = { inserted: after.ins - before.counters.n_tup_ins, updated: after.upd - before.counters.n_tup_upd, deleted: after.del - before.counters.n_tup_del };
    if (moves.inserted > 0 || moves.updated > 0 || moves.deleted > 0) tables[key] = moves;
  }
  return { tables, observedMs: Date.now() - Date.parse(pre.takenAt), note: LAG_NOTE };
}

/**
 * Rows that appeared or vanished in a watched table beyond what the run's own counters
 * say: what counting switched off looks like (a superuser script's SET track_counts = off,
 * then back on). The script's own net change is read without statistics: the count inside
 * its transaction minus the count of the committed state, read on the runner's connection
 * at the same moment. The two differ only by the script's uncommitted work, so other
 * sessions' writes (whose statistics arrive late) cannot be mistaken for it. The committed
 * count is read before and after the inside one; when another session commits in between,
 * the reading is repeated.
 */
export interface CountCheckInput {
  readonly runnerDb: Db;
  readonly trx: Db;
  readonly tables: readonly WatchedTable[];
  readonly changes: Readonly<Record<TableKey, TableChange>>;
}

export interface WatchedTable {
  readonly schema: string;
  readonly name: string;
  readonly key: TableKey;
}

const ATTEMPTS = 3;

export async function uncountedChanges(input: CountCheckInput): Promise<Violation[]> {
  const violations: Violation[] = [];
  for (const table of input.tables) {
    const own = input.changes[table.key];
    // TRUNCATE and DDL are judged by their own rules, and their lock keeps every other session out.
    if (own?.truncated || own?.ddl || own?.rewritten) continue;
    let observed: number | null;
    try {
      observed = await ownNetChange(input, table);
    } catch (error) {
      if ((error as { code?: string }).code !== LOCK_NOT_AVAILABLE) throw error;
      violations.push({ table: table.key, rule: 'unexplained-change', detail: 'the script holds a lock that keeps the runner from reading the committed rows, so its counters cannot be checked against them; release the lock (no LOCK TABLE ... ACCESS EXCLUSIVE) or run under a non-superuser scriptRole' });
      continue;
    }
    if (observed === null) continue;
    const counted = own ? own.inserted - own.deleted : 0;
    const unexplained = observed - counted;
    if (unexplained === 0) continue;
    violations.push({
      table: table.key,
      rule: 'unexplained-change',
      detail: `the transaction ${unexplained < 0 ? 'removed' : 'added'} ${Math.abs(unexplained)} row(s) more than its statistics counters recorded (counting switched off by a superuser script?). Run scripts under a non-superuser scriptRole`,
    });
  }
  return violations;
}

/** The script's net rows in one table, or null when other sessions kept committing around every reading. */
async function ownNetChange(input: CountCheckInput, table: WatchedTable): Promise<number | null> {
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const committedBefore = await countCommitted(input.runnerDb, table);
    const inside = await countRows(input.trx, table);
    const committedAfter = await countCommitted(input.runnerDb, table);
    if (committedBefore === committedAfter) return inside - committedBefore;
  }
  return null;
}

async function countRows(db: Db, table: WatchedTable): Promise<number> {
  const { rows } = await sql<{ n: number }>`select pg_catalog.count(*) as n from ${sql.id(table.schema, table.name)}`.execute(db);
  return Number(rows[0]!.n);
}

const LOCK_NOT_AVAILABLE = '55P03';

/** The runner's side must never wait on the script's locks: the script's transaction waits on the runner. */
async function countCommitted(db: Db, table: WatchedTable): Promise<number> {
  return db.transaction().execute(async (trx) => {
    await sql`select pg_catalog.set_config('lock_timeout', '1s', true)`.execute(trx);
    return countRows(trx, table);
  });
}
