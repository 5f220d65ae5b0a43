import { sql } from 'kysely';
import type { Db } from '../db/connection.js';
import type { ChainHead } from './types.js';

/**
 * A copy of the chain head kept somewhere the log's owner cannot silently rewind. Dropping
 * the last entries of audit.jsonl leaves a perfectly valid shorter chain; only a head
 * recorded elsewhere shows that it used to be longer.
 */
export interface ChainAnchor {
  record(logId: string, seq: number, hash: string): Promise<void>;
  read(logId: string): Promise<{ seq: number; hash: string } | null>;
  /** Every log anchored here. Lets verify notice an evidence directory that was emptied or replaced wholesale. */
  list?(): Promise<readonly AnchoredLog[]>;
}

export interface AnchoredLog extends ChainHead {
  readonly logId: string;
  readonly updatedAt: string;
}

const UNDEFINED_TABLE = '42P01';
const INVALID_SCHEMA = '3F000';
// Two first-time writers racing on CREATE ... IF NOT EXISTS can still collide in the catalog.
const CREATE_RACE = new Set(['23505', '42P06', '42P07', '42710']);

/**
 * The anchor in the target database, keyed by log id (the hash of entry 1) so that several
 * evidence directories can share one database. It uses the handle it is given: the run
 * passes a session outside the script's transaction, so an anchor write never joins it.
 */
export function databaseAnchor(db: Db): ChainAnchor {
  const upsert = (logId: string, seq: number, hash: string) => sql`
    insert into safe_run.chain_head as h (log_id, seq, hash) values (${logId}, ${seq}, ${hash})
    on conflict (log_id) do update set seq = excluded.seq, hash = excluded.hash, updated_at = now()
    where h.seq < excluded.seq`.execute(db);

  return {
    async record(logId, seq, hash) {
      try {
        await upsert(logId, seq, hash);
        return;
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (code !== UNDEFINED_TABLE && code !== INVALID_SCHEMA) throw error;
      }
      await createAnchorTable(db);
      await upsert(logId, seq, hash);
    },
    async read(logId) {
      try {
        const { rows } = await sql<ChainHead>`select seq, hash from safe_run.chain_head where log_id = ${logId}`.execute(db);
        const row = rows[0];
        return row ? { seq: Number(row.seq), hash: row.hash } : null;
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (code === UNDEFINED_TABLE || code === INVALID_SCHEMA) return null;
        throw error;
      }
    },
    async list() {
      try {
        const { rows } = await sql<{ log_id: string; seq: number; hash: string; updated_at: Date }>`
          select log_id, seq, hash, updated_at from safe_run.chain_head order by updated_at desc`.execute(db);
        return rows.map((r) => ({ logId: r.log_id, seq: Number(r.seq), hash: r.hash, updatedAt: new Date(r.updated_at).toISOString() }));
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (code === UNDEFINED_TABLE || code === INVALID_SCHEMA) return [];
        throw error;
      }
    },
  };
}

async function createAnchorTable(db: Db): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      // CREATE SCHEMA IF NOT EXISTS still needs CREATE on the database; a role that was
      // given only the existing schema (see the warning in log.ts) must not trip on it.
      const { rows } = await sql`select 1 from pg_catalog.pg_namespace where nspname = 'safe_run'`.execute(db);
      if (!rows.length) await sql`create schema if not exists safe_run`.execute(db);
      await sql`
        create table if not exists safe_run.chain_head (
          log_id text primary key,
          seq bigint not null,
          hash text not null,
          updated_at timestamptz not null default now()
        )`.execute(db);
      return;
    } catch (error) {
      if (attempt >= 3 || !CREATE_RACE.has((error as { code?: string }).code ?? '')) throw error;
    }
  }
}
