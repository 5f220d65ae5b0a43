import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { installEvidenceSchema, type EvidenceDb } from '../../src/audit/store-schema.js';
import { createDb } from '../../src/db/connection.js';
import { withDatabase } from '../../src/db/url.js';
import { asServerAdmin, serverUrl } from './db.js';

/**
 * A dedicated evidence database beside the test targets, set up as the README says: the
 * owner creates safe_run_evidence, and safe-run logs in as a role that may only select and
 * insert there (and move the chain head). `writerUrl` carries that role's password.
 */
export interface EvidenceDatabase {
  readonly name: string;
  /** The writer role's URL, password included (what a config's evidence.store holds). */
  readonly writerUrl: string;
  readonly password: string;
  /** An owner's pool, for arranging (tampering) and asserting. */
  readonly db: EvidenceDb;
  drop(): Promise<void>;
}

export async function createEvidenceDatabase(): Promise<EvidenceDatabase> {
  const suffix = randomBytes(5).toString('hex');
  const name = `evidence_${suffix}`;
  const role = `evidence_writer_${suffix}`;
  const password = `pw-${randomBytes(12).toString('hex')}`;
  await asServerAdmin(async (admin) => {
    await sql`create database ${sql.id(name)}`.execute(admin);
    await sql`create role ${sql.id(role)} login password ${sql.lit(password)}`.execute(admin);
  });
  const db = createDb<Record<string, never>>(withDatabase(serverUrl(), name), { maxConnections: 2 });
  await installEvidenceSchema(db);
  await sql`grant usage on schema safe_run_evidence to ${sql.id(role)}`.execute(db);
  await sql`grant select, insert on safe_run_evidence.entries, safe_run_evidence.keys to ${sql.id(role)}`.execute(db);
  await sql`grant select, insert, update on safe_run_evidence.chains to ${sql.id(role)}`.execute(db);
  const writer = new URL(withDatabase(serverUrl(), name));
  writer.username = role;
  writer.password = password;
  return {
    name,
    writerUrl: writer.href,
    password,
    db,
    drop: async () => {
      await db.destroy();
      await asServerAdmin(async (admin) => {
        await sql`drop database if exists ${sql.id(name)} with (force)`.execute(admin);
        await sql`drop role if exists ${sql.id(role)}`.execute(admin);
      });
    },
  };
}

/** The stored lines of every chain, by database name, in chain order. */
export async function storedLines(db: EvidenceDb): Promise<Map<string, string[]>> {
  const { rows } = await sql<{ database_name: string; line: string }>`
    select c.database_name, e.line from safe_run_evidence.entries e
      join safe_run_evidence.chains c using (chain_id) order by c.database_name, e.seq`.execute(db);
  const chains = new Map<string, string[]>();
  for (const row of rows) chains.set(row.database_name, [...(chains.get(row.database_name) ?? []), row.line]);
  return chains;
}
