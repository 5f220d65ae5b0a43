import { sql } from 'kysely';
import { readFingerprints, readTableList, withFingerprints, type Fingerprints, type TableCatalog } from '../db/catalog.js';
import { type Db, inImportedSnapshot, onlyRow, poolCapacity } from '../db/connection.js';
import { readIdentity, readWalPosition } from '../db/identity.js';
import { countInSnapshot, planExactCounts, sumPartitions, tablesToScan } from './counts.js';
import type { SnapshotOptions } from './types.js';
import type { Snapshot, TableKey, TableState } from '../records/index.js';

export interface TakenSnapshot<T> {
  readonly snapshot: Snapshot;
  /** What `whileOpen` returned (the backup, in a guarded run). */
  readonly held: T | undefined;
}

/**
 * Reads the state of every user table at one instant (SPEC "The guarded run" step 4).
 *
 * One REPEATABLE READ transaction exports its snapshot; the catalog, the identity, the
 * WAL position and every exact count are read in that snapshot, the counts in parallel on
 * extra connections that import it. `whileOpen` starts as soon as the snapshot is exported
 * and runs alongside the reads (in a guarded run it is `pg_dump --snapshot`, so the backup
 * holds exactly the rows counted here, and neither waits for the other); the exporting
 * transaction stays open until both are done, because an exported snapshot can only be
 * imported while it is open.
 *
 * Cost: a fixed number of catalog and statistics queries, plus the rows of the tables
 * counted exactly (`exactTables`, not those in `knownCounts`), never the rows of the others.
 *
 * Connections: at most `options.connections` at once (connectionBudget), the exporting one
 * included, plus what `whileOpen` takes.
 */
export async function takeSnapshot<T>(
  db: Db,
  options: SnapshotOptions,
  whileOpen?: (exportedSnapshotId: string) => Promise<T>,
): Promise<TakenSnapshot<T>> {
  const started = performance.now();
  const takenAt = new Date().toISOString();
  // Awaited once the catalog is read; a rejection before then is this snapshot's error, not an unhandled one.
  if (options.exactTables instanceof Promise) options.exactTables.catch(() => {});
  return db
    .transaction()
    .setIsolationLevel('repeatable read')
    .setAccessMode('read only')
    .execute(async (trx) => {
      // The first statement fixes the transaction's snapshot; exporting it here makes that
      // instant the one everything below describes.
      const snapshotId = onlyRow((await sql<{ id: string }>`select pg_export_snapshot() as id`.execute(trx)).rows).id;
      // Started before the reads and awaited after them: the backup and the counts share the
      // snapshot and the machine, not a turn. Its rejection is handled where it is awaited.
      const holding = whileOpen?.(snapshotId);
      holding?.catch(() => {});
      let snapshot: Snapshot;
      try {
        snapshot = await readInSnapshot({ db, trx, snapshotId, options, takenAt, started });
      } catch (error) {
        // The exporting transaction must outlive whatever imported its snapshot.
        await holding?.catch(() => {});
        throw error;
      }
      options.onRead?.(snapshot);
      const held = await holding;
      return { snapshot, held };
    });
}

/** What every read inside one exported snapshot works from. */
interface InSnapshot {
  /** The pool: further connections import the snapshot from it. */
  readonly db: Db;
  /** The transaction that exported the snapshot. */
  readonly trx: Db;
  readonly snapshotId: string;
  readonly options: SnapshotOptions;
  readonly takenAt: string;
  readonly started: number;
}

/**
 * How many connections a snapshot holds at once, the exporting one included: what the caller
 * allows (`options.connections`), never more than the pool has. Each further connection is a
 * new server process: on the bench machine 18 ms of the server's CPU to start and end one,
 * and its first catalog read costs two to three times a warm one's (the fingerprints: 28 ms
 * against 8). On two busy cores that is more than the parallel reads save, so a run asks
 * for two (BENCHMARKS.md, "fifteenth stop").
 */
function connectionBudget(db: Db, options: SnapshotOptions): number {
  return Math.max(1, Math.min(options.connections ?? poolCapacity(db), poolCapacity(db)));
}

async function readInSnapshot(read: InSnapshot): Promise<Snapshot> {
  // The fingerprints are most of the catalog read (every table's definition deparsed). With
  // a second connection they are read there, beside everything else, in the same snapshot:
  // the counts need only the table list. With one they wait for the counts on the exporting
  // connection.
  const budget = connectionBudget(read.db, read.options);
  const aside = budget >= 2;
  const fingerprinting = aside ? inImportedSnapshot(read.db, read.snapshotId, (t) => readFingerprints(t, null)) : null;
  fingerprinting?.catch(() => {}); // awaited below, or before an error leaves: its connection must be back first
  try {
    // The exporting connection is taken, and so is the fingerprints' when they are read aside.
    return await readTablesAndCounts(read, fingerprinting, budget - 1 - (aside ? 1 : 0));
  } finally {
    await fingerprinting?.catch(() => {});
  }
}

async function readTablesAndCounts(
  read: InSnapshot,
  /** Null: read here, on the exporting transaction, once the counts are done. */
  fingerprinting: Promise<ReadonlyMap<number, Fingerprints>> | null,
  /** Connections the counts may take beside the exporting one. */
  countWorkers: number,
): Promise<Snapshot> {
  const { db, trx, snapshotId, options, takenAt, started } = read;
  const database = await readIdentity(trx, options.url);
  const wal = await readWalPosition(trx);
  const tableList = await readTableList(trx);
  const catalog = withFingerprints(tableList, new Map());

  const known = new Map(Object.entries(options.knownCounts ?? {}).filter(([key]) => catalog[key]));
  // A caller may still be working out what to count (a run whose script is loading): the
  // catalog above is read meanwhile, and the snapshot's own cost leaves out the wait.
  let waitedMs = 0;
  const settle = async (): Promise<ReadonlySet<TableKey>> => {
    const waiting = performance.now();
    const tables = (await options.exactTables) ?? new Set<TableKey>();
    waitedMs += performance.now() - waiting;
    return tables;
  };
  const plan = (tables: ReadonlySet<TableKey>): Set<TableKey> => planExactCounts(catalog, tables, options.exactCountThreshold);
  const count = async (wanted: ReadonlySet<TableKey>, counts: Map<TableKey, number>): Promise<void> => {
    const toScan = tablesToScan(catalog, wanted).filter((t) => !known.has(t.key) && !counts.has(t.key));
    const counted = await countInSnapshot(db, trx, snapshotId, toScan, countWorkers, options.onCounted);
    for (const [key, n] of counted) counts.set(key, n);
  };
  const counts = new Map<TableKey, number>();
  const guess = options.exactTablesGuess && (await settledOr(options.exactTables, options.exactTablesGuess));
  if (guess) await count(plan(guess), counts);
  const wanted = plan(await settle());
  await count(wanted, counts);
  // A guessed table the caller turned out not to need is recorded as if the guess was never made.
  for (const key of counts.keys()) if (!wanted.has(key)) counts.delete(key);
  for (const [key, n] of known) counts.set(key, n);
  sumPartitions(catalog, counts, new Set([...wanted, ...known.keys()]));
  const fingerprints = await (fingerprinting ?? readFingerprints(trx, null));
  return {
    takenAt,
    database,
    walLsn: wal.lsn,
    tables: tableStates(withFingerprints(tableList, fingerprints), counts),
    durationMs: Math.round(performance.now() - started - waitedMs),
  };
}

function tableStates(catalog: TableCatalog, counts: ReadonlyMap<TableKey, number>): Record<TableKey, TableState> {
  const tables: Record<TableKey, TableState> = {};
  for (const [key, t] of Object.entries(catalog)) {
    const exact = counts.get(key);
    tables[key] = {
      schema: t.schema,
      name: t.name,
      oid: t.oid,
      relfilenode: t.relfilenode,
      kind: t.kind,
      rows: exact ?? t.estimate,
      rowsKind: exact === undefined ? 'estimate' : 'exact',
      counters: t.counters,
      fingerprint: t.fingerprint,
      behaviourFingerprint: t.behaviourFingerprint,
    };
  }
  return tables;
}

/**
 * What `value` holds if it is already there (a set, or a promise that has settled), else
 * `fallback`, without waiting. A promise already rejected rejects here too.
 */
export async function settledOr<T>(value: T | Promise<T> | undefined, fallback: T): Promise<T> {
  const notYet = Symbol('not yet');
  // Promise.race settles with the first operand already settled, in array order.
  const first = await Promise.race([value, Promise.resolve(notYet)]);
  return first === notYet || first === undefined ? fallback : (first as T);
}
