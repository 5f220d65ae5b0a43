import { sql } from 'kysely';
import type { Db } from '../db/connection.js';
import { countRowsExact } from './measure.js';
import type { TableChange, TableKey, Violation } from '../records/index.js';
import { errorCode, LOCK_NOT_AVAILABLE } from '../errors.js';
import { bothSettled } from '../settled.js';

/**
 * The script's own net rows in a table, read without statistics: the count inside its
 * transaction minus the count of the committed state, read on the runner's connection at
 * the same moment. The two differ only by the script's uncommitted work, so other sessions
 * (inserting or deleting meanwhile, their statistics arriving late) cannot be mistaken for
 * it, and cannot mask it either. The committed state is held still around the inside count:
 * read in a snapshot taken before it, and found unchanged after it, either because no
 * transaction committed meanwhile or because a second count says so. When another session
 * commits in between, the reading is repeated.
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
 * Every table at once: the committed counts, each in a snapshot taken before the count
 * inside starts and read beside it; then, unless no transaction committed since those
 * snapshots, the committed counts again. A table whose committed count moved meanwhile is
 * read again (up to ATTEMPTS times); one that never held still gets no entry.
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
    const { before, inside, snapshots } = await countBesideInside(runnerDb, trx, pending, attempt === 0 ? first : pending);
    const after = !pending.length || (await nothingCommittedSince(runnerDb, snapshots)) ? before : await countCommitted(runnerDb, pending);
    firstInside ??= inside;
    pending = pending.filter((t) => {
      if (before[t.key] !== after[t.key]) return true;
      net[t.key] = inside[t.key]! - before[t.key]!;
      return false;
    });
  }
  return { net, inside: firstInside ?? {} };
}

/**
 * The committed counts of `committed`, read in a snapshot taken before the count inside of
 * `inside` starts, and that count, side by side on the server's cores. Every started
 * statement is settled before this returns, failed or not.
 */
async function countBesideInside(
  runnerDb: Db,
  trx: Db,
  committed: readonly WatchedTable[],
  inside: readonly WatchedTable[],
): Promise<{ before: Record<TableKey, number>; inside: Record<TableKey, number>; snapshots: string[] }> {
  if (!committed.length) return { before: {}, inside: await countRowsExact(trx, inside), snapshots: [] };
  const held = countCommittedInSnapshot(runnerDb, committed);
  held.count.catch(() => {}); // settled below, whatever happens to the snapshot
  let snapshot: string;
  try {
    snapshot = await held.snapshot;
  } catch (error) {
    await held.count.catch(() => {});
    throw error;
  }
  const [before, counted] = await bothSettled(held.count, countRowsExact(trx, inside));
  return { before, inside: counted, snapshots: [snapshot] };
}

/**
 * The committed counts of `tables` in one REPEATABLE READ transaction on one connection:
 * `snapshot` resolves once its snapshot is taken, before the counts, so what they see is fixed
 * from then. One connection, not one per table: each is a server process started for the
 * run, which costs more than the tables' counts side by side save on two cores. The counts
 * give up after a second's wait for a lock (LOCK_NOT_AVAILABLE): the runner must never wait on
 * the script's locks, since the script's transaction waits on the runner.
 */
function countCommittedInSnapshot(
  db: Db,
  tables: readonly WatchedTable[],
): { snapshot: Promise<string>; count: Promise<Record<TableKey, number>> } {
  let taken!: (snapshot: string) => void;
  const snapshot = new Promise<string>((resolve) => (taken = resolve));
  const count = db
    .transaction()
    .setIsolationLevel('repeatable read')
    .execute(async (trx) => {
      const { rows } = await sql<{ snapshot: string }>`
        select pg_catalog.set_config('lock_timeout', '1s', true), pg_catalog.pg_current_snapshot()::pg_catalog.text as snapshot`.execute(
        trx,
      );
      taken(rows[0]!.snapshot);
      return countRowsExact(trx, tables);
    });
  // A failure before the snapshot was taken is the count's: the snapshot never comes then.
  // Handled here too, for a caller that waits only for the count (countCommitted).
  const whenTaken = Promise.race([snapshot, count.then(() => snapshot)]);
  whenTaken.catch(() => {});
  return { snapshot: whenTaken, count };
}

/**
 * Whether every transaction the server counts as committed now was committed already in each
 * of `snapshots` (pg_current_snapshot() text). Then no committed state has changed since, and
 * a second count would only repeat the first. The script's own transaction is in progress
 * throughout, so it counts in neither.
 */
async function nothingCommittedSince(db: Db, snapshots: readonly string[]): Promise<boolean> {
  const { rows } = await sql<{ now: string }>`select pg_catalog.pg_current_snapshot()::pg_catalog.text as now`.execute(db);
  const now = rows[0]!.now;
  return snapshots.every((earlier) => sameCommitted(earlier, now));
}

/** A pg_snapshot as text, `xmin:xmax:xip,...`: what a transaction id's visibility depends on. */
interface XidSnapshot {
  readonly xmin: bigint;
  readonly xmax: bigint;
  readonly inProgress: ReadonlySet<bigint>;
}

function parseSnapshot(text: string): XidSnapshot {
  const [xmin, xmax, xip = ''] = text.split(':');
  return { xmin: BigInt(xmin!), xmax: BigInt(xmax!), inProgress: new Set(xip ? xip.split(',').map((x) => BigInt(x)) : []) };
}

function committedIn(snapshot: XidSnapshot, xid: bigint): boolean {
  return xid < snapshot.xmin || (xid < snapshot.xmax && !snapshot.inProgress.has(xid));
}

/** Beyond this many transaction ids started in between, the second count is cheaper than the proof. */
const MAX_XIDS_COMPARED = 10_000n;

/**
 * Whether `later` counts no transaction as finished that `earlier` did not: every id that was
 * running or not yet started in `earlier` is still running, or not started, in `later`. An
 * aborted transaction looks finished too, which only costs a second count.
 */
export function sameCommitted(earlierText: string, laterText: string): boolean {
  const earlier = parseSnapshot(earlierText);
  const later = parseSnapshot(laterText);
  if (later.xmax - earlier.xmax > MAX_XIDS_COMPARED) return false;
  for (const xid of earlier.inProgress) if (committedIn(later, xid)) return false;
  for (let xid = earlier.xmax; xid < later.xmax; xid++) if (committedIn(later, xid)) return false;
  return true;
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

/** The second reading of the committed counts, after the count inside. */
function countCommitted(db: Db, tables: readonly WatchedTable[]): Promise<Record<TableKey, number>> {
  return countCommittedInSnapshot(db, tables).count;
}
