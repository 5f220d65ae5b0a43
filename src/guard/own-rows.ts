import { sql } from 'kysely';
import type { Db } from '../db/connection.js';
import { countRowsExact } from './measure.js';
import type { TableChange, TableKey, Violation } from '../records/index.js';
import { errorCode, LOCK_NOT_AVAILABLE } from '../errors.js';

/**
 * The script's own net rows in a table, read without statistics: the count inside its
 * transaction minus the count of the committed state, read on the runner's connection at
 * the same moment. The two differ only by the script's uncommitted work, so other sessions
 * (inserting or deleting meanwhile, their statistics arriving late) cannot be mistaken for
 * it, and cannot mask it either. The committed count is read before and after the inside
 * one; when another session commits in between, the reading is repeated.
 */
export interface WatchedTable {
  readonly schema: string;
  readonly name: string;
  readonly key: TableKey;
}

export interface OwnRows {
  /** The exact counts inside the transaction of every table asked for (`inside`), read in the first bracket. */
  readonly inside: Readonly<Record<TableKey, number>>;
  /** Net rows the transaction added (negative: removed), by table. */
  readonly net: Readonly<Record<TableKey, number>>;
  /** Tables the script keeps the runner from reading (an ACCESS EXCLUSIVE lock of its own). */
  readonly blocked: readonly TableKey[];
}

const ATTEMPTS = 3;

/**
 * `inside`: the tables whose in-transaction count the caller needs anyway (the guards' and
 * the post-snapshot's), a superset of `tables`. They are counted as the first bracket's
 * inside reading, so no table is counted inside twice.
 */
export async function readOwnRows(
  runnerDb: Db,
  trx: Db,
  tables: readonly WatchedTable[],
  changes: Readonly<Record<TableKey, TableChange>>,
  inside: readonly WatchedTable[] = tables,
): Promise<OwnRows> {
  // TRUNCATE and DDL are judged by their own rules, and their lock keeps every other session out.
  const measured = tables.filter((t) => !changes[t.key]?.truncated && !changes[t.key]?.ddl && !changes[t.key]?.rewritten);
  const all = [...inside, ...measured.filter((t) => !inside.some((i) => i.key === t.key))];
  try {
    return { ...(await netChanges(runnerDb, trx, measured, all)), blocked: [] };
  } catch (error) {
    if (errorCode(error) !== LOCK_NOT_AVAILABLE) throw error;
    // Some table is locked against the runner: one at a time, to name which.
    return { ...(await readOneByOne(runnerDb, trx, measured)), inside: await countRowsExact(trx, all) };
  }
}

/**
 * Every table at once, each reading one statement: the committed counts, the counts inside,
 * the committed counts again. A table whose committed count moved meanwhile is read again
 * (up to ATTEMPTS times); one that never held still gets no entry.
 */
async function netChanges(
  runnerDb: Db,
  trx: Db,
  tables: readonly WatchedTable[],
  first: readonly WatchedTable[] = tables,
): Promise<{ net: Record<TableKey, number>; inside: Record<TableKey, number> }> {
  const net: Record<TableKey, number> = {};
  let firstInside: Record<TableKey, number> | null = null;
  let pending = tables;
  for (let attempt = 0; attempt === 0 || (attempt < ATTEMPTS && pending.length); attempt++) {
    const before = pending.length ? await countCommitted(runnerDb, pending) : {};
    const inside = await countRowsExact(trx, attempt === 0 ? first : pending);
    const after = pending.length ? await countCommitted(runnerDb, pending) : {};
    firstInside ??= inside;
    pending = pending.filter((t) => {
      if (before[t.key] !== after[t.key]) return true;
      net[t.key] = inside[t.key]! - before[t.key]!;
      return false;
    });
  }
  return { net, inside: firstInside ?? {} };
}

async function readOneByOne(runnerDb: Db, trx: Db, tables: readonly WatchedTable[]): Promise<Omit<OwnRows, 'inside'>> {
  const net: Record<TableKey, number> = {};
  const blocked: TableKey[] = [];
  for (const table of tables) {
    try {
      Object.assign(net, (await netChanges(runnerDb, trx, [table])).net);
    } catch (error) {
      if (errorCode(error) !== LOCK_NOT_AVAILABLE) throw error;
      blocked.push(table.key);
    }
  }
  return { net, blocked };
}

/**
 * Rows that appeared or vanished beyond what the run's own counters say: what counting
 * switched off looks like (a superuser script's SET track_counts = off, then back on).
 */
export function uncountedChanges(own: OwnRows, changes: Readonly<Record<TableKey, TableChange>>): Violation[] {
  const violations: Violation[] = own.blocked.map((table) => ({
    table,
    rule: 'unexplained-change' as const,
    detail:
      'the script holds a lock that keeps the runner from reading the committed rows, so its counters cannot be checked against them; release the lock (no LOCK TABLE ... ACCESS EXCLUSIVE) or run under a non-superuser scriptRole',
  }));
  for (const [table, observed] of Object.entries(own.net)) {
    const counted = changes[table] ? changes[table]!.inserted - changes[table]!.deleted : 0;
    const unexplained = observed - counted;
    if (unexplained === 0) continue;
    violations.push({
      table,
      rule: 'unexplained-change',
      detail: `the transaction ${unexplained < 0 ? 'removed' : 'added'} ${Math.abs(unexplained)} row(s) more than its statistics counters recorded (counting switched off by a superuser script?). Run scripts under a non-superuser scriptRole`,
    });
  }
  return violations;
}

/**
 * Each table on a connection of its own, side by side, as the runner's pool allows: the
 * bracket around the count inside is as wide as its slowest table, not the sum of them.
 * The runner's side must never wait on the script's locks: the script's transaction waits on the runner.
 */
async function countCommitted(db: Db, tables: readonly WatchedTable[]): Promise<Record<TableKey, number>> {
  const counts = await Promise.all(
    tables.map((table) =>
      db.transaction().execute(async (trx) => {
        await sql`select pg_catalog.set_config('lock_timeout', '1s', true)`.execute(trx);
        return countRowsExact(trx, [table]);
      }),
    ),
  );
  return Object.assign({}, ...counts) as Record<TableKey, number>;
}
