import { sql, type Kysely } from 'kysely';
import { errorCode } from '../errors.js';

/** The evidence database's handle: safe-run reaches its tables through `sql` only, by their qualified names. */
export type EvidenceDb = Kysely<Record<string, never>>;

// Two first-time writers racing on CREATE ... IF NOT EXISTS can still collide in the catalog.
const CREATE_RACE = new Set(['23505', '42P06', '42P07', '42710']);

/**
 * safe_run_evidence in the evidence database, created by safe-run itself and idempotently.
 * A role that may only insert and select there (README "A shared evidence store") finds the
 * tables already made by the owner and never issues a CREATE.
 *
 * - chains: one row per target database (its server's system identifier and its name, not
 *   its oid, so the history survives DROP/CREATE DATABASE). The row is the chain head: every
 *   append locks it, so appends from many hosts are serialised and the chain never forks.
 * - entries: one row per entry, `line` holding the exact canonical JSON that was hashed and
 *   signed (the same bytes as a line of audit.jsonl); the other columns are for lookups.
 * - keys: the public keys that signed entry 1 of a chain (later signers are introduced by
 *   key.add / key.rotate entries, which carry their public key).
 */
export async function installEvidenceSchema(db: EvidenceDb): Promise<void> {
  const { rows } = await sql<{ ready: boolean }>`
    select pg_catalog.to_regclass('safe_run_evidence.entries') is not null
       and pg_catalog.to_regclass('safe_run_evidence.keys') is not null as ready`.execute(db);
  if (rows[0]?.ready) return;
  for (let attempt = 1; ; attempt++) {
    try {
      await sql`create schema if not exists safe_run_evidence`.execute(db);
      await sql`
        create table if not exists safe_run_evidence.chains (
          chain_id bigint generated always as identity primary key,
          system_identifier text not null,
          database_name text not null,
          seq bigint not null default 0,
          hash text,
          log_id text,
          updated_at timestamptz not null default pg_catalog.clock_timestamp(),
          unique (system_identifier, database_name)
        )`.execute(db);
      await sql`
        create table if not exists safe_run_evidence.entries (
          chain_id bigint not null references safe_run_evidence.chains,
          seq bigint not null,
          ts timestamptz not null,
          kind text not null,
          run_id text,
          key_id text not null,
          hash text not null,
          line text not null,
          primary key (chain_id, seq)
        )`.execute(db);
      await sql`
        create table if not exists safe_run_evidence.keys (
          key_id text primary key,
          public_key text not null,
          added_at timestamptz not null default pg_catalog.clock_timestamp()
        )`.execute(db);
      return;
    } catch (error) {
      if (attempt >= 3 || !CREATE_RACE.has(errorCode(error) ?? '')) throw error;
    }
  }
}
