import { sql } from 'kysely';
import type { Db } from '../db/connection.js';
import { connectionOf, dropdbCommand, psqlCommand } from '../db/conninfo.js';
import { usageError } from '../errors.js';

/** PostgreSQL truncates identifiers to 63 bytes; a silently shortened name would not be the one we print. */
const MAX_IDENTIFIER_BYTES = 63;

/**
 * `<db>_restore_<first 10 characters of the run id>`: the run id's time part, so the name
 * sorts by run and says which run it holds. The database part is shortened if needed.
 */
export function scratchDatabaseName(sourceDb: string, runId: string): string {
  const suffix = `_restore_${runId.slice(0, 10).toLowerCase()}`;
  let base = sourceDb;
  while (Buffer.byteLength(base + suffix) > MAX_IDENTIFIER_BYTES) base = base.slice(0, -1);
  return base + suffix;
}

/**
 * A new, empty database (from template0, so nothing installed in template1 collides with
 * the archive). It must not exist yet: a restore never writes into a database it did not
 * create, unless the operator named it with --into.
 */
export async function createScratchDatabase(admin: Db, name: string, server: URL): Promise<void> {
  const scratchExists = (n: string) => existsError(n, server);
  const existing = await admin.selectFrom('pg_catalog.pg_database').select('oid').where('datname', '=', name).executeTakeFirst();
  if (existing) throw scratchExists(name);
  try {
    await sql`create database ${sql.id(name)} template template0`.execute(admin);
  } catch (error) {
    const e = error as { code?: string; message?: string };
    if (e.code === '42P04') throw scratchExists(name);
    if (e.code === '42501') {
      throw usageError(
        `Cannot create the scratch database ${name}: ${e.message}.`,
        'Use a role with CREATEDB, or restore into an existing empty database with --into URL.',
        error,
      );
    }
    throw error;
  }
}

function existsError(name: string, server: URL): Error {
  const scratch = connectionOf(server, name);
  return usageError(
    `The scratch database ${name} already exists (an earlier restore of this run?); not touching it.`,
    `Look at it first (${psqlCommand(scratch)}), then drop it (${dropdbCommand(scratch)}) and run the restore again, or restore elsewhere with --into URL.`,
  );
}

export async function dropDatabase(admin: Db, name: string): Promise<void> {
  await sql`drop database if exists ${sql.id(name)} with (force)`.execute(admin);
}
