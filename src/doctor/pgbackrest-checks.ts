import { sql } from 'kysely';
import { readStanzaInfo } from '../backup/pgbackrest-info.js';
import { pgbackrest, pgbackrestVersion, PGBACKREST_INSTALL_HINT } from '../backup/pgbackrest.js';
import type { Config, PgBackRestConfig } from '../config/config.js';
import type { Db } from '../db/connection.js';
import { ExitCode } from '../errors.js';
import type { Logger } from '../logger.js';
import type { DatabaseIdentity } from '../records/index.js';
import { fail, failFrom, pass, type DoctorCheck } from './check.js';

/**
 * backup.mode "pgbackrest": what a guarded run's backup step will need, checked the same way.
 * Nothing here in pg_dump mode. A failure is exit 4, like the run it predicts.
 */
export async function checkPgBackRest(
  config: Config,
  db: Db | null,
  identity: DatabaseIdentity | null,
  log: Logger,
): Promise<DoctorCheck[]> {
  const settings = config.backup.pgbackrest;
  if (config.backup.mode !== 'pgbackrest' || !settings) return [];
  const version = await pgbackrestVersion();
  if (!version) {
    return [fail('pgbackrest', 'no `pgbackrest` program on PATH', PGBACKREST_INSTALL_HINT, ExitCode.backupFailed)];
  }
  const call = { config: settings, log };
  return [pass('pgbackrest', `pgBackRest ${version}`), await checkStanza(settings, call, identity), await checkArchive(settings, call, db)];
}

async function checkStanza(
  settings: PgBackRestConfig,
  call: Parameters<typeof readStanzaInfo>[0],
  identity: DatabaseIdentity | null,
): Promise<DoctorCheck> {
  const name = 'pgbackrest-stanza';
  try {
    const info = await readStanzaInfo(call);
    if (info.status.code !== 0) {
      return fail(
        name,
        `stanza "${settings.stanza}": ${info.status.message}`,
        `pgbackrest --stanza=${settings.stanza} info shows the details.`,
        ExitCode.backupFailed,
      );
    }
    if (identity?.systemIdentifier && info.systemId && identity.systemIdentifier !== info.systemId) {
      return fail(
        name,
        `stanza "${settings.stanza}" backs up system ${info.systemId}, the target database is on ${identity.systemIdentifier}`,
        'Point backup.pgbackrest.stanza (or configPath) at the stanza of this cluster.',
        ExitCode.backupFailed,
      );
    }
    const newest = info.backups.at(-1);
    if (!newest) {
      return fail(
        name,
        `stanza "${settings.stanza}" has no backup yet`,
        `Take one: pgbackrest --stanza=${settings.stanza} --type=full backup (as the postgres user).`,
        ExitCode.backupFailed,
      );
    }
    return pass(
      name,
      `stanza "${settings.stanza}", ${info.backups.length} backup(s), newest ${newest.label}; archive up to ${info.archiveMax ?? 'nothing'}`,
    );
  } catch (error) {
    return failFrom(name, error, ExitCode.backupFailed, `Run pgbackrest --stanza=${settings.stanza} info as the postgres user.`);
  }
}

/** `pgbackrest check` switches a WAL segment and waits for it in the repository: the real test of archive_command. */
async function checkArchive(settings: PgBackRestConfig, call: Parameters<typeof readStanzaInfo>[0], db: Db | null): Promise<DoctorCheck> {
  const name = 'wal-archive';
  try {
    await pgbackrest(call, 'check', [`--archive-timeout=${Math.max(1, Math.ceil(settings.archiveTimeoutMs / 1000))}`]);
    return pass(name, `archive_command pushes to stanza "${settings.stanza}" (pgbackrest check)${await archiverDetail(db)}`);
  } catch (error) {
    const detail = await archiverDetail(db);
    const failed = failFrom(
      name,
      error,
      ExitCode.backupFailed,
      'Fix archive_command / the repository; the server log says why each push failed.',
    );
    return { ...failed, detail: `${failed.detail}${detail}` };
  }
}

async function archiverDetail(db: Db | null): Promise<string> {
  if (!db) return '';
  const row = await sql<{ archived: string | null; failed: string | null; failed_at: Date | null; archived_at: Date | null }>`
      select last_archived_wal as archived, last_archived_time as archived_at, last_failed_wal as failed, last_failed_time as failed_at
        from pg_catalog.pg_stat_archiver`
    .execute(db)
    .then((r) => r.rows[0])
    .catch(() => undefined);
  if (!row) return '';
  const failing = row.failed_at && (!row.archived_at || row.failed_at > row.archived_at);
  return failing ? `; last push FAILED for ${row.failed} at ${row.failed_at!.toISOString()}` : `; last archived ${row.archived ?? 'none'}`;
}
