import { readCreatedHere, readOwnCatalogRows, type OwnRowsScan } from './catalog-authors.js';
import type { Db } from '../db/connection.js';
import {
  catalogWritesDelta,
  readCatalogState,
  readCatalogWrites,
  readCatalogWritesHere,
  withCatalogSearchPath,
  type CatalogState,
  type CatalogWrites,
} from './catalog-changes.js';
import { diffCatalogState, storageChanges, temporaryObjectsChanged, type CatalogChange } from './catalog-diff.js';
import { bothSettled } from '../settled.js';
import type { OwnLocks } from './measure.js';
import { byCodeUnit } from '../text-order.js';

/** The diff's verdict alone, before asking whose work it was. */
export type CatalogJudgement = Omit<CatalogVerdict, 'ownWork'>;

/** The catalog and its write counters at one moment of the script's transaction. */
export interface CatalogSnapshot {
  readonly state: CatalogState;
  readonly writes: CatalogWrites;
  /** For a superuser, the scan for catalog rows the transaction wrote (catalog-authors.ts). */
  readonly ownRows?: OwnRowsScan | null;
}

export interface CatalogVerdict {
  /** Named changes outside temp namespaces, plus at most one `unidentified` (see judgeCatalogChanges). */
  readonly changes: readonly CatalogChange[];
  /**
   * Whether the transaction itself did catalog work (catalogWork below). Under READ COMMITTED
   * the diff also names DDL other sessions committed meanwhile; a transaction that did none
   * changed nothing there, whatever the diff shows.
   */
  readonly ownWork: boolean;
  /** The transaction's catalog writes between the two snapshots, by catalog. */
  readonly writes: CatalogWrites;
  /** Relations given a new relfilenode: TRUNCATE and rewrites, judged elsewhere. */
  readonly storageMoved: number;
  readonly temporaryObjectsChanged: boolean;
}

/** Catalogs that creating, altering or dropping a temp table, view, sequence, type or function writes. */
export const TEMP_OBJECT_CATALOGS: ReadonlySet<string> = new Set([
  'pg_class',
  'pg_attribute',
  'pg_type',
  'pg_depend',
  'pg_attrdef',
  'pg_constraint',
  'pg_index',
  'pg_rewrite',
  'pg_proc',
  'pg_trigger',
  'pg_sequence',
  'pg_inherits',
  'pg_description',
  'pg_namespace',
  'pg_policy',
]);

/**
 * Catalogs a rewrite writes to: REFRESH MATERIALIZED VIEW (and any rewrite) builds a
 * transient heap, with its row type, columns, toast table and index, swaps the storage
 * and drops the transient one. No definition changes, so nothing is named.
 */
export const REWRITE_CATALOGS: ReadonlySet<string> = new Set(['pg_class', 'pg_type', 'pg_depend', 'pg_attribute', 'pg_index']);

export async function readCatalogSnapshot(trx: Db): Promise<CatalogSnapshot> {
  // Writes first: reading the state writes nothing, but the order keeps the rule simple to state.
  const writes = await readCatalogWrites(trx);
  return { state: await readCatalogState(trx), writes };
}

/** What the verdict needs from before the script: the write counters read at BEGIN, and for a superuser the catalogs to look in. */
export type CatalogBaseline = Omit<CatalogSnapshot, 'state'>;

/**
 * The verdict after the script: what says the transaction did catalog work is read first
 * (catalogWork), and only if it did is the whole state read, now and as the transaction found
 * it at BEGIN (`atBegin`, on another connection, side by side), and compared; those two full
 * reads are most of what measuring a DML script would cost. Under a role the write counters
 * say it. A superuser can switch them off (track_counts is superuser-only, and a pre-existing
 * function may carry `SET track_counts = off`), so under `trust: superuser` the catalog rows
 * carrying the transaction's xid and its locks say it too. DDL done with counting off is still
 * named by the diff (rule 1 below), and counts as the transaction's own. Other sessions' DDL
 * costs no full read.
 */
export async function readCatalogVerdict(
  trx: Db,
  before: CatalogBaseline,
  trust: 'role' | 'superuser',
  locks: Pick<OwnLocks, 'strong' | 'objects' | 'catalogs'>,
  atBegin: () => Promise<CatalogState | null>,
): Promise<CatalogVerdict> {
  const scan = trust === 'superuser' ? before.ownRows : undefined;
  const { writes, own } = await withCatalogSearchPath(trx, async (t) => ({
    writes: await readCatalogWritesHere(t),
    own: scan ? await readOwnCatalogRows(t, scan) : null,
  }));
  const work = { trust, writes: catalogWritesDelta(before.writes, writes), ownRows: own, locks };
  if (!catalogWork(work)) {
    // Nothing the diff could name is this transaction's, and no relfilenode moved either:
    // TRUNCATE and rewrites write a pg_class row. Other sessions' DDL costs no full read.
    return { changes: [], ownWork: false, writes: new Map(), storageMoved: 0, temporaryObjectsChanged: false };
  }
  const [begin, state] = await bothSettled(atBegin(), readCatalogState(trx));
  if (!begin) return unreadableAtBegin(work.writes);
  const created = diffCatalogState(begin, state).filter((c) => c.action === 'created');
  const createdHere = await withCatalogSearchPath(trx, (t) => readCreatedHere(t, created, trust === 'superuser'));
  const evidence: Evidence = { ...work, createdHere };
  const verdict = judgeCatalogChanges({ ...before, state: begin }, { state, writes }, (change) => ownChange(change, evidence));
  return { ...verdict, ownWork: true };
}

/**
 * The transaction wrote the catalogs and the catalog as it found it at BEGIN could not be
 * read: a lock on a system catalog itself (a superuser's LOCK TABLE pg_catalog.pg_class, or
 * another session's VACUUM FULL of one) kept the reading out. Nothing can be compared, so
 * nothing is cleared: one unidentified change naming the catalogs written, which only a
 * script-wide `ddl` declaration allows.
 */
function unreadableAtBegin(writes: CatalogWrites): CatalogVerdict {
  const written = [...writes.keys()].sort(byCodeUnit);
  return {
    changes: [
      {
        action: 'unidentified',
        objectType: 'catalog rows',
        identity: written.join(', ') || 'system catalogs',
        catalog: written[0] ?? 'pg_class',
        detail:
          'the transaction changed the system catalogs, and a lock on a system catalog kept the catalog as it was at BEGIN ' +
          'from being read, so what changed cannot be named',
      },
    ],
    ownWork: true,
    writes,
    storageMoved: 0,
    temporaryObjectsChanged: false,
  };
}

/** What says a catalog change is the transaction's own, read after the script. */
interface Evidence {
  readonly trust: 'role' | 'superuser';
  /** The transaction's own catalog writes (after minus before). */
  readonly writes: CatalogWrites;
  /** Under a superuser: the catalog rows the transaction wrote, by catalog (null: not looked for). */
  readonly ownRows: ReadonlyMap<string, number> | null;
  /** By key, of the objects created: whether this transaction wrote the object's own row (catalog-authors.ts). */
  readonly createdHere: ReadonlyMap<string, boolean>;
  readonly locks: Pick<OwnLocks, 'strong' | 'objects' | 'catalogs'>;
}

/**
 * Did this transaction write the catalogs? Under a role its write counters are the whole
 * story. A superuser's counters may have been off (a pre-existing function with `SET
 * track_counts = off`), so any of these says yes as well: a visible catalog row this
 * transaction wrote (readOwnCatalogRows: CREATE, ALTER, GRANT, ...), a lock no DML takes,
 * which DROP, ALTER TABLE and COMMENT hold to the end of the transaction, or a write lock
 * still held on a catalog (REVOKE, which takes no other lock and leaves no row; a DELETE
 * straight from a catalog). Not having looked for rows (no catalog list) says yes.
 */
function catalogWork(e: Omit<Evidence, 'createdHere'>): boolean {
  if (e.writes.size > 0) return true;
  if (e.trust === 'role') return false;
  return !e.ownRows || e.ownRows.size > 0 || e.locks.objects > 0 || e.locks.strong.size > 0 || e.locks.catalogs.size > 0;
}

/**
 * Whether one named change can be this transaction's. A created object is, exactly when its
 * own catalog row carries the transaction's xid (where that row can be looked up). Otherwise
 * it goes catalog by catalog: creating or dropping an object writes the catalog it lives in,
 * so a change in a catalog the transaction never wrote is another session's, committed
 * meanwhile (a role created elsewhere in the cluster, say). Under a superuser "wrote" is also
 * a row of that catalog carrying the transaction's xid or a write lock still held on it; for
 * a drop, which leaves no row, any lock no DML takes as well. An alteration may be written to
 * another catalog than the object's own (a view's rule, an index's pg_index row), so it is
 * always the transaction's once it did catalog work.
 */
function ownChange(change: CatalogChange, e: Evidence): boolean {
  if (change.action === 'altered' || change.action === 'unidentified') return true;
  const here = change.action === 'created' && change.key !== undefined ? e.createdHere.get(change.key) : undefined;
  if (here !== undefined) return here;
  const catalogs = change.catalog === 'pg_description' ? ['pg_description', 'pg_shdescription'] : [change.catalog];
  if (catalogs.some((c) => e.writes.has(c))) return true;
  if (e.trust === 'role') return false;
  if (!e.ownRows || catalogs.some((c) => e.ownRows!.has(c) || e.locks.catalogs.has(c))) return true;
  return change.action === 'dropped' && (e.locks.objects > 0 || e.locks.strong.size > 0);
}

/**
 * The rule, in order:
 * 1. Every object the diff names (outside temp namespaces) is a change, unless `isOwn` says
 *    it cannot be this transaction's (ownChange).
 * 2. If the diff names something, the catalog writes are recorded but add nothing: the
 *    transaction changed the catalogs, and the named changes say how.
 * 3. Otherwise each catalog with writes must be explained, or it is unidentified:
 *    - pg_class updates only, no more than the relations whose relfilenode moved: TRUNCATE
 *      or a rewrite, which the guard judges from relfilenodes;
 *    - while some relfilenode moved, writes to REWRITE_CATALOGS: a rewrite's transient heap;
 *    - writes to a catalog that temp objects use (TEMP_OBJECT_CATALOGS), while the temp
 *      namespace's objects changed between the two reads: temp work, allowed.
 * 4. Unexplained writes give one `unidentified` change naming the catalogs and counts.
 *    That is the case for objects created and dropped again (a trigger installed, used and
 *    removed; equally a temp table dropped before the end: the counters cannot tell the two
 *    apart, so a script should use ON COMMIT DROP), work in a rolled-back savepoint, and
 *    any catalog the state does not read (text search, collations, operator classes...).
 */
export function judgeCatalogChanges(
  before: CatalogSnapshot,
  after: CatalogSnapshot,
  isOwn: (change: CatalogChange) => boolean = () => true,
): CatalogJudgement {
  const named = diffCatalogState(before.state, after.state).filter(isOwn);
  const writes = catalogWritesDelta(before.writes, after.writes);
  const storageMoved = storageChanges(before.state, after.state);
  const tempChanged = temporaryObjectsChanged(before.state, after.state);
  const verdict = { writes, storageMoved, temporaryObjectsChanged: tempChanged };
  if (named.length > 0) return { changes: named, ...verdict };

  const unexplained = [...writes].filter(([catalog, w]) => {
    if (catalog === 'pg_class' && w.ins === 0 && w.del === 0 && w.upd <= storageMoved) return false;
    if (storageMoved > 0 && REWRITE_CATALOGS.has(catalog)) return false;
    return !(tempChanged && TEMP_OBJECT_CATALOGS.has(catalog));
  });
  if (unexplained.length === 0) return { changes: [], ...verdict };
  const counts = unexplained
    .sort(([a], [b]) => byCodeUnit(a, b))
    .map(([catalog, w]) => `${catalog} (${[w.ins && `+${w.ins}`, w.upd && `~${w.upd}`, w.del && `-${w.del}`].filter(Boolean).join(' ')})`);
  const unidentified: CatalogChange = {
    action: 'unidentified',
    objectType: 'catalog rows',
    identity: unexplained.map(([catalog]) => catalog).join(', '),
    catalog: unexplained[0]![0],
    detail:
      `the transaction wrote ${counts.join(', ')} but no lasting object change names it: objects created and dropped ` +
      'again, work in a rolled-back savepoint, or a catalog safe-run does not read',
  };
  return { changes: [unidentified], ...verdict };
}
