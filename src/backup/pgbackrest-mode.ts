import type { PgBackRestConfig } from '../config/config.js';
import type { Db } from '../db/connection.js';
import { errorMessage, ExitCode, SafeRunError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { BackupRecord, DatabaseIdentity, PitrIntentRecord, PitrPostRecord, Snapshot } from '../records/index.js';
import { failedBackupRecord } from './backup.js';
import type { BackupMode } from './mode.js';
import { waitForArchive } from './pgbackrest-archive.js';
import { newestBackupBefore, readStanzaInfo } from './pgbackrest-info.js';
import { pgbackrest, pgbackrestVersion, PGBACKREST_INSTALL_HINT, type PgBackRestCall } from './pgbackrest.js';

export interface PgBackRestModeOptions {
  readonly config: PgBackRestConfig;
  /** The run's own session on the target: the WAL switch and pg_stat_archiver go through it. */
  readonly session: Db;
  readonly identity: DatabaseIdentity;
  readonly url: URL;
  readonly log: Logger;
}

/**
 * backup.mode "pgbackrest": nothing is dumped. Before the pre-snapshot, `pgbackrest check`
 * proves the stanza and WAL archiving work (and an incremental backup is taken if asked for);
 * the intent then records the pre-snapshot's WAL position and the newest backup that ended
 * before it, which is all `restore --pitr` needs. After COMMIT the commit's WAL segment is
 * switched out and waited for in the archive, so the run's "after" is recoverable too.
 */
export function pgBackRestMode(options: PgBackRestModeOptions): BackupMode {
  const call: PgBackRestCall = {
    config: options.config,
    password: options.url.password ? decodeURIComponent(options.url.password) : null,
    log: options.log,
  };
  const started = performance.now();
  let version = '';
  let incrementalLabel: string | null = null;
  let ready: Promise<unknown> = Promise.resolve(null);
  const prepare = async (): Promise<void> => {
    version = (await pgbackrestVersion()) ?? '';
    if (!version)
      throw new SafeRunError(
        'pgBackRest is not installed: no `pgbackrest` program on PATH.',
        ExitCode.backupFailed,
        PGBACKREST_INSTALL_HINT,
      );
    // Archiving must work before anything changes: a run whose WAL never reaches the archive cannot be rewound.
    await pgbackrest(call, 'check', [`--archive-timeout=${Math.max(1, Math.ceil(options.config.archiveTimeoutMs / 1000))}`]);
    if (options.config.type === 'incr') {
      await pgbackrest(call, 'backup', ['--type=incr']);
      incrementalLabel = (await readStanzaInfo(call)).backups.at(-1)?.label ?? null;
    }
  };
  return {
    beforeSnapshot: async () => {
      // Settled to the error, if any: record() turns it into a failed backup record.
      ready = prepare().then(
        () => null,
        (error: unknown) => error,
      );
      // An incremental backup must end before the snapshot's instant, or it cannot be rewound to it;
      // a bare check need not, so it overlaps the snapshot and the run waits for it in record().
      if (options.config.type === 'incr') await ready;
    },
    duringSnapshot: async () => {},
    // Nothing was written: the stanza's backups and archive are pgBackRest's, never ours to remove.
    discard: async () => {},
    record: async (pre) => {
      const failure = await ready;
      if (failure) return failedBackupRecord('full', [], failure);
      try {
        return await intentRecord(call, options.identity, pre, version, incrementalLabel, performance.now() - started);
      } catch (error) {
        return failedBackupRecord('full', [], error);
      }
    },
    afterCommit: (commitLsn) => archivedCommit(call, options.session, commitLsn),
  };
}

async function intentRecord(
  call: PgBackRestCall,
  identity: DatabaseIdentity,
  pre: Snapshot,
  version: string,
  incrementalLabel: string | null,
  elapsedMs: number,
): Promise<BackupRecord> {
  const info = await readStanzaInfo(call);
  // A stanza that backs up another cluster would restore someone else's data.
  if (identity.systemIdentifier && info.systemId && identity.systemIdentifier !== info.systemId) {
    throw new SafeRunError(
      `Stanza "${call.config.stanza}" backs up the cluster with system identifier ${info.systemId}, but the target database is on ${identity.systemIdentifier}.`,
      ExitCode.backupFailed,
      'The script did not run. Point backup.pgbackrest.stanza (or its configPath) at the stanza of this cluster.',
    );
  }
  const set = newestBackupBefore(info, pre.walLsn);
  const pitr: PitrIntentRecord = {
    v: 1,
    engine: 'pgbackrest',
    stanza: call.config.stanza,
    pgbackrestVersion: version,
    backupLabel: set.label,
    backupStopLsn: set.stopLsn,
    incrementalLabel,
    preRunLsn: pre.walLsn,
    systemIdentifier: info.systemId,
  };
  call.log.info('pgBackRest ready for point-in-time recovery', { stanza: pitr.stanza, set: pitr.backupLabel, preRunLsn: pitr.preRunLsn });
  return {
    scope: 'full',
    status: 'verified',
    path: null,
    format: null,
    sha256: null,
    bytes: 0,
    tables: Object.keys(pre.tables),
    pgDump: null,
    durationMs: Math.round(elapsedMs),
    pitr,
  };
}

async function archivedCommit(call: PgBackRestCall, session: Db, commitLsn: string): Promise<PitrPostRecord> {
  const started = performance.now();
  try {
    // archive_command is `pgbackrest archive-push`, which exits 0 only once the segment is in the repository.
    const wait = await waitForArchive(session, commitLsn, call.config.archiveTimeoutMs);
    return {
      v: 1,
      walFile: wait.walFile,
      archived: wait.archived,
      archiveMax: wait.lastArchived,
      waitedMs: Math.round(performance.now() - started),
      ...(wait.error ? { error: wait.error } : {}),
    };
  } catch (error) {
    return {
      v: 1,
      walFile: '',
      archived: false,
      archiveMax: null,
      waitedMs: Math.round(performance.now() - started),
      error: errorMessage(error),
    };
  }
}
