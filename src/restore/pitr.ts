import os from 'node:os';
import path from 'node:path';
import { databaseAnchor, openAuditLog } from '../audit/log.js';
import { readEntries } from '../audit/read.js';
import { clusterOwner } from '../backup/cluster-owner.js';
import { pgbackrest } from '../backup/pgbackrest.js';
import type { Config, PgBackRestConfig } from '../config/config.js';
import type { Db } from '../db/connection.js';
import type { TargetHandle } from '../db/target.js';
import { redactUrl } from '../db/url.js';
import { sql } from 'kysely';
import { ExitCode, SafeRunError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { PitrIntentRecord, PitrRestoreBody, TableKey } from '../records/index.js';
import { readOperator } from '../run/operator.js';
import { takeSnapshot } from '../snapshot/take.js';
import { findRestorableRun, type RestorableRun } from './find-run.js';
import { comparePitrCounts } from './pitr-compare.js';
import {
  choosePort,
  prepareDataDir,
  removeDataDir,
  restoredDb,
  serverBinDir,
  startRestored,
  stopRestored,
  waitUntilPromoted,
  type RestoredCluster,
} from './pitr-cluster.js';

export interface PitrRestoreOptions {
  readonly run: string;
  readonly dataDir: string;
  readonly port: number | null;
}

export interface PitrRestoreResult extends PitrRestoreBody {
  readonly entry: { readonly seq: number; readonly hash: string };
  /** The restored database, password removed. */
  readonly url: string;
  readonly pgCtl: string;
  readonly runAs: string | null;
}

/** Recovery replays WAL from the backup up to the run; a large database takes its time. */
const RECOVERY_TIMEOUT_MS = 6 * 60 * 60 * 1000;

/**
 * `safe-run restore <run> --pitr`: pgBackRest restores the run's recorded backup set into a
 * NEW data directory, recovering to the WAL position read inside the run's pre-snapshot (and
 * stopping just before it), with archiving off so the copy never pushes WAL into the live
 * archive. The copy is started on its own port and counted beside the pre-snapshot. The live
 * cluster is only read: for the anchor, and for where its data directory is.
 */
export async function restorePitr(
  config: Config,
  options: PitrRestoreOptions,
  target: TargetHandle,
  log: Logger,
): Promise<PitrRestoreResult> {
  const run = await findRestorableRun(config.evidenceDir, options.run);
  const pitr = pitrOf(run);
  const stanza = stanzaConfig(config, pitr);
  const { db: live, url: liveUrl } = await target.open();
  // Opened first: a missing key must stop the restore before it creates anything.
  const audit = await openAuditLog({
    evidenceDir: config.evidenceDir,
    signingKeyPath: config.signingKey,
    anchor: databaseAnchor(live),
    log,
  });
  const owner = await clusterOwner();
  const dataDir = path.resolve(options.dataDir);
  const port = await choosePort(options.port);
  // Before anything is started: the one check that protects existing data.
  await prepareDataDir(dataDir, await liveDataDirectory(live), owner);
  const cluster: RestoredCluster = {
    binDir: await serverBinDir(Math.floor(run.snapshot.database.serverVersionNum / 10_000), config.pgBinDir),
    dataDir,
    port,
    logFile: path.join(dataDir, 'safe-run-pitr.log'),
  };

  let started = false;
  try {
    log.info('pgbackrest restore', { stanza: stanza.stanza, set: pitr.backupLabel, target: pitr.preRunLsn, dataDir: cluster.dataDir });
    await pgbackrest({ config: stanza, log }, 'restore', [
      `--set=${pitr.backupLabel}`,
      '--type=lsn',
      `--target=${pitr.preRunLsn}`,
      // Stop before the first WAL record written after the pre-snapshot: nothing of the run is replayed.
      '--target-exclusive',
      '--target-action=promote',
      '--archive-mode=off',
      `--pg1-path=${cluster.dataDir}`,
      // Tablespaces would otherwise be restored to their original paths: the live cluster's.
      `--tablespace-map-all=${cluster.dataDir}/pg_tblspc_restored`,
    ]);
    started = true;
    await startRestored(cluster, owner, RECOVERY_TIMEOUT_MS);
    const { db, url } = restoredDb(liveUrl, cluster.port, run.snapshot.database.name);
    try {
      await waitUntilPromoted(db, cluster, RECOVERY_TIMEOUT_MS);
      const exactTables = new Set(Object.keys(run.snapshot.tables).filter((k) => run.snapshot.tables[k]!.rowsKind === 'exact'));
      const { snapshot } = await takeSnapshot(db, {
        url,
        exactTables,
      });
      const comparison = comparePitrCounts(run.snapshot, snapshot, await concurrentTables(config.evidenceDir, run.runId));
      const body: PitrRestoreBody = {
        v: 1,
        runId: run.runId,
        source: run.source,
        intent: { seq: run.seq, hash: run.hash },
        stanza: stanza.stanza,
        backupLabel: pitr.backupLabel,
        targetLsn: pitr.preRunLsn,
        dataDir: cluster.dataDir,
        port: cluster.port,
        database: run.snapshot.database.name,
        counts: comparison.counts,
        mismatched: comparison.mismatched,
        operator: await readOperator(),
        host: os.hostname(),
      };
      const entry = await audit.append('restore.pitr', body, { runId: run.runId });
      return {
        ...body,
        entry: { seq: entry.seq, hash: entry.hash },
        url: redactUrl(url),
        pgCtl: path.join(cluster.binDir, 'pg_ctl'),
        runAs: owner ? 'postgres' : null,
      };
    } finally {
      await db.destroy();
    }
  } catch (error) {
    // Half a restore is no evidence, and it would block the retry with the same --data-dir.
    if (started) await stopRestored(cluster, owner);
    await removeDataDir(cluster.dataDir);
    throw error;
  }
}

function pitrOf(run: RestorableRun): PitrIntentRecord {
  if (run.backup.pitr) return run.backup.pitr;
  if (run.backup.status === 'failed') {
    throw new SafeRunError(
      `Run ${run.runId} has nothing to rewind: its backup step failed (${run.backup.error ?? 'no error recorded'}), so the script never ran.`,
      ExitCode.backupFailed,
      '`safe-run show ' + run.runId + '` shows what was recorded.',
    );
  }
  throw new SafeRunError(
    `Run ${run.runId} was not taken in pgbackrest mode: it has no recorded WAL position to recover to.`,
    ExitCode.backupFailed,
    run.backup.path ? `Restore its pg_dump archive instead: safe-run restore ${run.runId}` : 'This run has no backup to restore from.',
  );
}

/** The run's stanza, with this host's pgBackRest config file (the repository may be reached differently here). */
function stanzaConfig(config: Config, pitr: PitrIntentRecord): PgBackRestConfig {
  const configured = config.backup.pgbackrest;
  return {
    stanza: pitr.stanza,
    configPath: configured?.configPath ?? null,
    type: null,
    archiveTimeoutMs: configured?.archiveTimeoutMs ?? 60_000,
  };
}

/** Null when the role may not read it (not a superuser or pg_read_all_settings): then only the emptiness check guards. */
async function liveDataDirectory(live: Db): Promise<string | null> {
  const row = (
    await sql<{ dir: string | null }>`select pg_catalog.current_setting('data_directory', true) as dir`.execute(live).catch(() => null)
  )?.rows[0];
  return row?.dir ? path.resolve(row.dir) : null;
}

/** Tables other sessions wrote to while the run was open, from its signed outcome. */
async function concurrentTables(evidenceDir: string, runId: string): Promise<Set<TableKey>> {
  for await (const entry of readEntries(evidenceDir)) {
    if (entry.kind === 'run.outcome' && entry.runId === runId) return new Set(Object.keys(entry.body.concurrentWrites?.tables ?? {}));
  }
  return new Set();
}
