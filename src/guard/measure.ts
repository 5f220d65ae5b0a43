import { sql } from 'kysely';
import type { Db } from '../db/connection.js';
import type { PgSequences } from '../db/schema.js';
import { keyOf, parseTableName, quoteTable } from '../db/names.js';
import type { TableChange, TableKey, Violation } from '../records/index.js';

/**
 * What the script's own transaction did, measured from inside it. pg_stat_xact_user_tables
 * may already hold counts of earlier, unflushed transactions of this backend, so changes are
 * always current minus a baseline taken in the same transaction (SPEC "Facts").
 */
export interface TableShape {
  readonly key: TableKey;
  readonly schema: string;
  readonly name: string;
  readonly oid: number;
  readonly relfilenode: number;
  readonly fingerprint: string;
  /** For a partitioned table: its leaf partitions, at any depth. */
  readonly leafPartitions: readonly TableKey[];
  /** Whether the transaction's role may SELECT from it (the script's role, in the script's transaction). */
  readonly readable?: boolean;
}

export interface XactCounters {
  readonly ins: number;
  readonly upd: number;
  readonly del: number;
}

export interface XactState {
  readonly counters: ReadonlyMap<number, XactCounters>;
  readonly shapes: ReadonlyMap<TableKey, TableShape>;
  readonly sequences: ReadonlyMap<string, string | null>;
}

export async function readXactCounters(trx: Db): Promise<Map<number, XactCounters>> {
  const rows = await trx
    .selectFrom('pg_catalog.pg_stat_xact_user_tables')
    .select(['relid', 'n_tup_ins as ins', 'n_tup_upd as upd', 'n_tup_del as del'])
    .execute();
  return new Map(rows.map((r) => [Number(r.relid), { ins: r.ins, upd: r.upd, del: r.del }]));
}

/** What the script's transaction holds relation locks on, read once after the script. */
export interface OwnLocks {
  /**
   * Relations it holds a lock on that DML never takes (SHARE UPDATE EXCLUSIVE and up).
   * TRUNCATE, ALTER, CREATE/DROP INDEX and DROP/CREATE TABLE all take one, so a new
   * relfilenode or fingerprint on a table outside this set was another session's doing: a
   * concurrent TRUNCATE or DDL becomes visible inside a READ COMMITTED script, and must not
   * be recorded as the run's.
   */
  readonly strong: Set<number>;
  /** Foreign tables it wrote to or truncated (see foreignWriteViolations). */
  readonly foreignWrites: readonly TableKey[];
  /**
   * Locks on catalog objects other than relations (a function, a role, a type...): DROP,
   * COMMENT and ALTER ... RESET take one, and hold it to the end of the transaction, whatever
   * the statistics counters say (catalog-verdict.ts).
   */
  readonly objects: number;
  /**
   * System catalogs it holds a write lock on (ROW EXCLUSIVE and up). Some DDL gives the lock
   * back when it is done with the catalog, but a write through SQL (a superuser's DELETE FROM
   * pg_catalog.pg_trigger) keeps it to the end.
   */
  readonly catalogs: ReadonlySet<string>;
}

const READ_MODES = ['AccessShareLock', 'RowShareLock'];
const STRONG_MODES = ['ShareUpdateExclusiveLock', 'ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock'];

export async function readOwnLocks(trx: Db): Promise<OwnLocks> {
  const { rows } = await sql<{
    locktype: string;
    oid: number;
    mode: string;
    foreign: boolean;
    table: boolean;
    schema: string;
    name: string;
  }>`
    select l.locktype, l.relation::int8 as oid, l.mode, coalesce(c.relkind = 'f', false) as foreign,
           coalesce(c.relkind = 'r', false) as table, n.nspname as schema, c.relname as name
      from pg_catalog.pg_locks l
      -- Outer joins: a table this transaction dropped has a lock and no pg_class row any more.
      left join pg_catalog.pg_class c on c.oid = l.relation
      left join pg_catalog.pg_namespace n on n.oid = c.relnamespace
     where l.pid = pg_catalog.pg_backend_pid() and l.locktype in ('relation', 'object') and l.granted`.execute(trx);
  const relations = rows.filter((r) => r.locktype === 'relation');
  return {
    strong: new Set(relations.filter((r) => STRONG_MODES.includes(r.mode)).map((r) => Number(r.oid))),
    foreignWrites: relations
      .filter((r) => r.foreign && (r.mode === 'RowExclusiveLock' || r.mode === 'AccessExclusiveLock'))
      .map((r) => keyOf(r.schema, r.name)),
    objects: rows.length - relations.length,
    catalogs: new Set(relations.filter((r) => r.table && r.schema === 'pg_catalog' && !READ_MODES.includes(r.mode)).map((r) => r.name)),
  };
}

/** Sequence positions: nextval() survives a rollback, so a dry run must say it consumed some. */
export async function readSequencePositions(trx: Db): Promise<Map<string, string | null>> {
  // last_value as text: a bigint sequence can pass 2^53, where the int8 parser would round it.
  const { rows } = await sql<Pick<PgSequences, 'schemaname' | 'sequencename'> & { last_value: string | null }>`
    select schemaname, sequencename, last_value::text as last_value from pg_catalog.pg_sequences
    where schemaname not in ('pg_catalog', 'information_schema', 'safe_run')`.execute(trx);
  return new Map(rows.map((r) => [keyOf(r.schemaname, r.sequencename), r.last_value]));
}

/**
 * Of the sequences that moved during the run, the ones this session drew from: currval()
 * only answers in a session that called nextval(), so other sessions' inserts meanwhile
 * are not reported as the run's. Each probe runs in a savepoint, because currval() of an
 * unused sequence is an error.
 */
export async function sequencesDrawnHere(trx: Db, moved: readonly string[]): Promise<string[]> {
  const drawn: string[] = [];
  for (const name of moved) {
    const { schema, table } = parseTableName(name);
    await sql`savepoint safe_run_currval`.execute(trx);
    try {
      await sql`select pg_catalog.currval(pg_catalog.format('%I.%I', ${schema}::text, ${table}::text)::pg_catalog.regclass)`.execute(trx);
      drawn.push(name);
      await sql`release savepoint safe_run_currval`.execute(trx);
    } catch {
      await sql`rollback to savepoint safe_run_currval`.execute(trx);
    }
  }
  return drawn;
}

/**
 * setval() is not undone by a rollback either, and a sequence set back hands out ids that
 * rows already have: the next INSERTs fail, or worse. A sequence that moved against its
 * direction during the run (a CYCLE sequence may wrap, so it is left out) stops the run.
 * Another session could have done it meanwhile, and a rollback cannot undo it: the detail
 * gives the statement that puts it back, for the operator to run, rather than running it.
 */
export async function sequenceResets(
  trx: Db,
  before: ReadonlyMap<string, string | null>,
  after: ReadonlyMap<string, string | null>,
): Promise<Violation[]> {
  const moved = [...after].filter(([name, value]) => before.get(name) != null && value !== before.get(name));
  if (!moved.length) return [];
  // TRUNCATE ... RESTART IDENTITY and ALTER SEQUENCE ... RESTART give the sequence new storage,
  // which rolls back with the run (and they are the truncate and DDL guards' to judge): this
  // transaction then wrote the sequence's pg_class row. setval() writes in place.
  const { rows } = await sql<{ schemaname: string; sequencename: string; up: boolean; cycle: boolean; restarted: boolean }>`
    select s.schemaname, s.sequencename, s.increment_by > 0 as up, s.cycle,
           coalesce(c.xmin = pg_catalog.xid(pg_catalog.pg_current_xact_id()), false) as restarted
      from pg_catalog.pg_sequences s
      left join pg_catalog.pg_class c on c.oid = pg_catalog.to_regclass(pg_catalog.format('%I.%I', s.schemaname, s.sequencename))`.execute(
    trx,
  );
  const meta = new Map(rows.map((r) => [keyOf(r.schemaname, r.sequencename), r]));
  return moved.flatMap(([name, now]): Violation[] => {
    const m = meta.get(name);
    const was = BigInt(before.get(name)!);
    // null: set back with is_called false (setval(s, n, false)).
    const back = now === null || (m?.up === false ? BigInt(now) > was : BigInt(now) < was);
    if (!m || m.cycle || m.restarted || !back) return [];
    const target = quoteTable(m.schemaname, m.sequencename).replace(/'/g, "''");
    return [
      {
        object: name,
        rule: 'sequence-reset',
        detail:
          `sequence ${name} went back from ${was} to ${now ?? 'a value not drawn yet'} during the run: the next INSERTs would ` +
          `reuse ids. setval() is not undone by the rollback; if this script did it, put it back: SELECT pg_catalog.setval('${target}', ${was});`,
      },
    ];
  });
}

/**
 * A foreign table's rows live on another server, or come back to this database through a
 * connection of their own (a postgres_fdw server pointing here): no counter, count or
 * backup of this run sees them, and a ledger would name that connection, not the run. A
 * write takes ROW EXCLUSIVE on the foreign table in this transaction (a TRUNCATE, ACCESS
 * EXCLUSIVE), so the locks tell; the run does not commit, and postgres_fdw rolls the remote
 * transaction back with it.
 */
export function foreignWriteViolations(locks: OwnLocks): Violation[] {
  return locks.foreignWrites.map((table) => ({
    object: table,
    rule: 'foreign-write',
    detail:
      `wrote to foreign table ${table}: its rows are on another server (or reached through another ` +
      'connection), where safe-run cannot count, back them up or name who changed them. Run that change on the server that holds the table.',
  }));
}

export interface Measurement {
  readonly changes: Record<TableKey, TableChange>;
  /** Sequences whose position moved during the run, by anyone (see sequencesDrawnHere). */
  readonly sequencesUsed: TableKey[];
}

/** Per-table changes, keeping only tables with a non-zero change (SPEC "changes"). */
export function measureChanges(baseline: XactState, current: XactState, ownStrongLocks: ReadonlySet<number>): Measurement {
  const changes: Record<TableKey, TableChange> = {};
  const keys = new Set([...baseline.shapes.keys(), ...current.shapes.keys()]);
  for (const key of keys) {
    const before = baseline.shapes.get(key);
    const after = current.shapes.get(key);
    const oid = (after ?? before)!.oid;
    const b = baseline.counters.get(oid) ?? { ins: 0, upd: 0, del: 0 };
    const c = current.counters.get(oid) ?? { ins: 0, upd: 0, del: 0 };
    const ours = ownStrongLocks.has(oid) || (!!before && ownStrongLocks.has(before.oid));
    const ddl = ours && (!before || !after || before.fingerprint !== after.fingerprint || before.oid !== after.oid);
    // A new relfilenode with the same shape is a TRUNCATE; with a new shape it is a rewrite by DDL.
    const newStorage = ours && !!before && !!after && before.relfilenode !== after.relfilenode;
    const change: TableChange = {
      inserted: Math.max(0, c.ins - b.ins),
      updated: Math.max(0, c.upd - b.upd),
      // TRUNCATE resets the transaction's n_tup_del, so a delta can go negative; clamp it.
      deleted: Math.max(0, c.del - b.del),
      truncated: newStorage && !ddl,
      ...(newStorage && ddl ? { rewritten: true } : {}),
      ...(ddl ? { ddl: true } : {}),
    };
    if (change.inserted || change.updated || change.deleted || change.truncated || change.ddl) changes[key] = change;
  }
  const sequencesUsed = [...current.sequences].filter(([name, value]) => baseline.sequences.get(name) !== value).map(([name]) => name);
  return { changes, sequencesUsed };
}

/**
 * Exact counts in one statement (`union all`), whatever the number of tables: one round trip
 * each would cost more than counting the small ones. Without `only`, so a partitioned or
 * inheritance parent counts its children's rows, as the guards compare them.
 */
export async function countRowsExact(
  trx: Db,
  tables: readonly { schema: string; name: string; key: TableKey }[],
): Promise<Record<TableKey, number>> {
  if (tables.length === 0) return {};
  const parts = tables.map((t, i) => sql`select ${i}::pg_catalog.int4 as i, pg_catalog.count(*) as n from ${sql.id(t.schema, t.name)}`);
  const { rows } = await sql<{ i: number; n: number }>`${sql.join(parts, sql` union all `)}`.execute(trx);
  const counts: Record<TableKey, number> = {};
  for (const row of rows) counts[tables[row.i]!.key] = Number(row.n);
  return counts;
}
