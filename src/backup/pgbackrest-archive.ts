import { sql } from 'kysely';
import { onlyRow, type Db } from '../db/connection.js';

export interface ArchiveWait {
  /** The WAL segment that holds the last byte before `lsn`. */
  readonly walFile: string;
  readonly archived: boolean;
  /** pg_stat_archiver.last_archived_wal when the wait ended. */
  readonly lastArchived: string | null;
  readonly error?: string;
}

const POLL_MS = 50;

/**
 * Forces the segment holding `lsn` out (pg_switch_wal) and waits until the server's archiver
 * reports it archived, at most `timeoutMs`. WAL files are archived in order, so a later segment
 * archived means this one is too. Names compare as strings: fixed-width hex, timeline first.
 */
export async function waitForArchive(session: Db, lsn: string, timeoutMs: number): Promise<ArchiveWait> {
  // lsn - 1: a commit that ends exactly on a segment boundary lives in the segment before it.
  const walFile = onlyRow((await sql<{ f: string }>`select pg_catalog.pg_walfile_name(${lsn}::pg_lsn - 1) as f`.execute(session)).rows).f;
  await sql`select pg_catalog.pg_switch_wal()`.execute(session);
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const row = (
      await sql<{ archived: string | null; failed: string | null; failed_at: Date | null }>`
        select last_archived_wal as archived, last_failed_wal as failed, last_failed_time as failed_at
          from pg_catalog.pg_stat_archiver`.execute(session)
    ).rows[0];
    if (row?.archived && /^[0-9A-F]{24}/.test(row.archived) && row.archived.slice(0, 24) >= walFile)
      return { walFile, archived: true, lastArchived: row.archived };
    if (performance.now() > deadline) {
      const failed = row?.failed
        ? `; the last failure was ${row.failed} at ${row.failed_at?.toISOString() ?? '?'} (see the server log)`
        : '';
      return {
        walFile,
        archived: false,
        lastArchived: row?.archived ?? null,
        error: `WAL segment ${walFile} was not archived within ${Math.round(timeoutMs / 1000)} s (last archived: ${row?.archived ?? 'none'})${failed}`,
      };
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}
