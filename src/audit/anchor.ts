import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import type { Db } from '../db/connection.js';
import type { ChainHeadRow } from '../db/schema.js';
import type { TargetHandle } from '../db/target.js';
import type { ChainHead } from './types.js';
import { errorCode } from '../errors.js';

/**
 * A copy of the chain head kept somewhere the log's owner cannot silently rewind. Dropping
 * the last entries of audit.jsonl leaves a perfectly valid shorter chain; only a head
 * recorded elsewhere shows that it used to be longer.
 */
export interface ChainAnchor {
  record(logId: string, seq: number, hash: string, pin?: AnchorPin): Promise<void>;
  read(logId: string): Promise<ChainHead | null>;
  /** Every log anchored here. Lets verify notice an evidence directory that was emptied or replaced wholesale. */
  list?(): Promise<readonly AnchoredLog[]>;
}

/**
 * What the anchor pins besides the head: the key that signed it (so a log re-signed with a
 * key dropped into keys/ fails) and the evidence directory it was written from (so a
 * directory whose log was removed or replaced wholesale is still recognised as this one).
 */
export interface AnchorPin {
  readonly keyId: string;
  /** `host:absolute path` of the evidence directory (see evidenceDirIdentity). */
  readonly evidenceDir: string;
}

export interface AnchoredHead extends ChainHead {
  /** Null for a row written before the column existed, or by a role that could not add it. */
  readonly keyId: string | null;
  readonly evidenceDir: string | null;
}

export interface AnchoredLog extends AnchoredHead {
  readonly logId: string;
  readonly updatedAt: string;
}

/** Host and absolute path: two hosts may each keep a `/srv/evidence` for one database. */
export function evidenceDirIdentity(evidenceDir: string): string {
  return `${os.hostname()}:${path.resolve(evidenceDir)}`;
}

/**
 * A script holding a lock on the anchor (LOCK TABLE safe_run.chain_head, or a row it
 * updated) would make the runner wait for the script's transaction, which waits for the
 * runner: the anchor write gives up after a moment instead. The append has already been
 * fsync'ed; the anchor catches up at the next append, and the guard rolls the script back.
 */
const ANCHOR_LOCK_TIMEOUT = '2s';

async function withoutWaiting<T>(db: Db, fn: (trx: Db) => Promise<T>): Promise<T> {
  return db.transaction().execute(async (trx) => {
    await sql`select pg_catalog.set_config('lock_timeout', ${ANCHOR_LOCK_TIMEOUT}, true)`.execute(trx);
    return fn(trx);
  });
}

const UNDEFINED_TABLE = '42P01';
const UNDEFINED_COLUMN = '42703';
const INVALID_SCHEMA = '3F000';
// Two first-time writers racing on CREATE ... IF NOT EXISTS can still collide in the catalog.
const CREATE_RACE = new Set(['23505', '42P06', '42P07', '42710']);

/**
 * The anchor in the target database, keyed by log id (the hash of entry 1) so that several
 * evidence directories can share one database. It uses the handle it is given: the run
 * passes a session outside the script's transaction, so an anchor write never joins it.
 */
export function databaseAnchor(db: Db): ChainAnchor {
  // The head only moves forward: a slower process must not rewind it to an older entry.
  const upsert = (logId: string, seq: number, hash: string) =>
    withoutWaiting(db, (trx) =>
      trx
        .insertInto('safe_run.chain_head')
        .values({ log_id: logId, seq, hash })
        .onConflict((oc) =>
          oc
            .column('log_id')
            .doUpdateSet((eb) => ({ seq: eb.ref('excluded.seq'), hash: eb.ref('excluded.hash'), updated_at: sql<Date>`now()` }))
            .where('safe_run.chain_head.seq', '<', (eb) => eb.ref('excluded.seq')),
        )
        .execute(),
    );
  const upsertPinned = (logId: string, seq: number, hash: string, pin: AnchorPin) =>
    withoutWaiting(db, (trx) =>
      trx
        .insertInto('safe_run.chain_head')
        .values({ log_id: logId, seq, hash, key_id: pin.keyId, evidence_dir: pin.evidenceDir })
        .onConflict((oc) =>
          oc
            .column('log_id')
            .doUpdateSet((eb) => ({
              seq: eb.ref('excluded.seq'),
              hash: eb.ref('excluded.hash'),
              key_id: eb.ref('excluded.key_id'),
              evidence_dir: eb.ref('excluded.evidence_dir'),
              updated_at: sql<Date>`now()`,
            }))
            .where('safe_run.chain_head.seq', '<', (eb) => eb.ref('excluded.seq')),
        )
        .execute(),
    );
  const write = async (logId: string, seq: number, hash: string, pin?: AnchorPin): Promise<void> => {
    if (!pin) return void (await upsert(logId, seq, hash));
    try {
      await upsertPinned(logId, seq, hash, pin);
    } catch (error) {
      if (errorCode(error) !== UNDEFINED_COLUMN) throw error;
      // An anchor table from before the pin columns: add them, or (a role that does not own
      // the table) keep recording the head without them rather than lose the anchor.
      if (await addPinColumns(db)) await upsertPinned(logId, seq, hash, pin);
      else await upsert(logId, seq, hash);
    }
  };

  return {
    async record(logId, seq, hash, pin) {
      try {
        await write(logId, seq, hash, pin);
        return;
      } catch (error) {
        const code = errorCode(error);
        if (code !== UNDEFINED_TABLE && code !== INVALID_SCHEMA) throw error;
      }
      await createAnchorTable(db);
      await write(logId, seq, hash, pin);
    },
    async read(logId) {
      const row = (await readAnchorRows(db, logId))[0];
      return row ? { seq: row.seq, hash: row.hash } : null;
    },
    async list() {
      return readAnchorRows(db, null);
    },
  };
}

/**
 * The anchor on a command's target handle, connecting on first use: keygen appends one entry
 * and must not fail for a database that is down (the append only warns when its anchor does).
 */
export function targetAnchor(target: TargetHandle): ChainAnchor {
  const anchor = async (): Promise<ChainAnchor> => databaseAnchor((await target.open()).db);
  return {
    record: async (logId, seq, hash, pin) => (await anchor()).record(logId, seq, hash, pin),
    read: async (logId) => (await anchor()).read(logId),
    list: async () => (await (await anchor()).list?.()) ?? [],
  };
}

/** to_jsonb(h) reads the pin columns when they exist and simply lacks them on an older table. */
async function readAnchorRows(db: Db, logId: string | null): Promise<AnchoredLog[]> {
  try {
    // The stored shape, loosely: an older table lacks the pin columns, and JSON carries updated_at as text.
    const { rows } = await sql<{ row: { readonly [C in keyof ChainHeadRow]?: unknown } }>`
      select to_jsonb(h) as row from safe_run.chain_head h
      where ${logId}::text is null or h.log_id = ${logId} order by h.updated_at desc`.execute(db);
    return rows.map(({ row: r }) => ({
      logId: String(r.log_id),
      seq: Number(r.seq),
      hash: String(r.hash),
      keyId: typeof r.key_id === 'string' ? r.key_id : null,
      evidenceDir: typeof r.evidence_dir === 'string' ? r.evidence_dir : null,
      updatedAt: new Date(String(r.updated_at)).toISOString(),
    }));
  } catch (error) {
    const code = errorCode(error);
    if (code === UNDEFINED_TABLE || code === INVALID_SCHEMA) return [];
    throw error;
  }
}

async function addPinColumns(db: Db): Promise<boolean> {
  try {
    await sql`alter table safe_run.chain_head add column if not exists key_id text, add column if not exists evidence_dir text`.execute(db);
    return true;
  } catch (error) {
    if (errorCode(error) === INSUFFICIENT_PRIVILEGE) return false;
    throw error;
  }
}

const INSUFFICIENT_PRIVILEGE = '42501';

async function createAnchorTable(db: Db): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      // CREATE SCHEMA IF NOT EXISTS still needs CREATE on the database; a role that was
      // given only the existing schema (see the warning in log.ts) must not trip on it.
      const schema = await db.selectFrom('pg_catalog.pg_namespace').select('oid').where('nspname', '=', 'safe_run').executeTakeFirst();
      if (!schema) await sql`create schema if not exists safe_run`.execute(db);
      await sql`
        create table if not exists safe_run.chain_head (
          log_id text primary key,
          seq bigint not null,
          hash text not null,
          key_id text,
          evidence_dir text,
          updated_at timestamptz not null default now()
        )`.execute(db);
      await addPinColumns(db);
      return;
    } catch (error) {
      if (attempt >= 3 || !CREATE_RACE.has(errorCode(error) ?? '')) throw error;
    }
  }
}

/**
 * Whether recording a head can still change the catalog: the first record in a database
 * creates the schema and table, an anchor table from before the pin columns gets them. A
 * guarded run reads the catalog before its script; it must know whether its own first
 * append is DDL, or it would mistake that for the script's.
 */
export async function anchorTableComplete(db: Db): Promise<boolean> {
  const { rows } = await sql<{ n: number }>`
    select pg_catalog.count(*)::int4 as n
      from pg_catalog.pg_attribute a
      join pg_catalog.pg_class c on c.oid = a.attrelid
      join pg_catalog.pg_namespace n on n.oid = c.relnamespace
     where n.nspname = 'safe_run' and c.relname = 'chain_head' and not a.attisdropped
       and a.attname in ('key_id', 'evidence_dir')`.execute(db);
  return rows[0]?.n === 2;
}
