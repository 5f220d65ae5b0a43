import { execa } from 'execa';
import { chownSync, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { sql } from 'kysely';
import type { OsUser } from '../backup/cluster-owner.js';
import { candidateBinDirs } from '../backup/pg-bin-dirs.js';
import { parsePgVersion } from '../backup/pg-tools.js';
import { freeLoopbackPort, startCluster, stopCluster } from '../backup/pg-cluster.js';
import { createDb, type Db } from '../db/connection.js';
import { errorMessage, ExitCode, SafeRunError, usageError } from '../errors.js';

/**
 * The new cluster a point-in-time restore fills: its own empty directory, its own port, its own
 * server process. Nothing here knows the live cluster except to keep away from it.
 */

/** A new or empty directory, never one inside the live data directory; created with mode 0700. */
export async function prepareDataDir(dir: string, liveDataDir: string | null, owner: OsUser | null): Promise<void> {
  if (liveDataDir && (dir === liveDataDir || !path.relative(liveDataDir, dir).startsWith('..'))) {
    throw usageError(
      `${dir} is inside the live cluster's data directory ${liveDataDir}.`,
      'Pick a directory outside it, e.g. /var/tmp/pitr-<run>.',
    );
  }
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory() || readdirSync(dir).length > 0) {
      throw usageError(
        `${dir} exists and is not an empty directory; a point-in-time restore only fills a new one.`,
        'Pass a new path to --data-dir (it is created), or empty that directory yourself if you are sure.',
      );
    }
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if (owner) chownSync(dir, owner.uid, owner.gid);
}

/** Removes what a failed restore left, so that the next attempt can use the same --data-dir. */
export async function removeDataDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** pg_ctl and postgres of exactly the backed-up server's major version: a data directory only opens with its own. */
export async function serverBinDir(major: number, configured: string | null): Promise<string> {
  for (const dir of candidateBinDirs(configured ?? undefined)) {
    if (!existsSync(path.join(dir, 'pg_ctl')) || !existsSync(path.join(dir, 'postgres'))) continue;
    const result = await execa(path.join(dir, 'postgres'), ['--version'], { reject: false, extendEnv: false, env: {} });
    if (parsePgVersion(String(result.stdout))?.major === major) return dir;
  }
  throw new SafeRunError(
    `No PostgreSQL ${major} server programs (pg_ctl, postgres) found to start the restored cluster.`,
    ExitCode.backupFailed,
    `Install them (Debian/Ubuntu: apt-get install postgresql-${major}), or set "pgBinDir" to their directory.`,
  );
}

export interface RestoredCluster {
  readonly binDir: string;
  readonly dataDir: string;
  readonly port: number;
  readonly logFile: string;
}

/**
 * Starts the restored cluster on loopback only, without Unix sockets (their path may be too long
 * or shared) and without archiving, then waits until recovery has reached its target and promoted.
 */
export async function startRestored(cluster: RestoredCluster, owner: OsUser | null, timeoutMs: number): Promise<void> {
  try {
    await startCluster({
      binDir: cluster.binDir,
      dataDir: cluster.dataDir,
      logFile: cluster.logFile,
      owner,
      settings: { port: String(cluster.port), listen_addresses: "'127.0.0.1'", unix_socket_directories: "''", archive_mode: 'off' },
      timeoutSeconds: Math.ceil(timeoutMs / 1000),
    });
  } catch (error) {
    throw startFailure(cluster, error);
  }
}

/** Polls pg_is_in_recovery() until the server promoted at the recovery target. */
export async function waitUntilPromoted(db: Db, cluster: RestoredCluster, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      const row = (await sql<{ r: boolean }>`select pg_catalog.pg_is_in_recovery() as r`.execute(db)).rows[0];
      if (row && !row.r) return;
    } catch (error) {
      // Recovery that cannot reach its target shuts the server down: the log says why.
      if (performance.now() > deadline || !existsSync(path.join(cluster.dataDir, 'postmaster.pid'))) throw startFailure(cluster, error);
    }
    if (performance.now() > deadline) throw startFailure(cluster, new Error(`still in recovery after ${Math.round(timeoutMs / 1000)} s`));
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export async function stopRestored(cluster: RestoredCluster, owner: OsUser | null): Promise<void> {
  await stopCluster(cluster.binDir, cluster.dataDir, owner);
}

export function restoredDb(liveUrl: URL, port: number, database: string): { db: Db; url: URL } {
  const url = new URL(liveUrl.href);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  url.pathname = `/${encodeURIComponent(database)}`;
  url.search = '';
  return { db: createDb(url, { applicationName: 'safe-run restore --pitr', maxConnections: 3 }), url };
}

function startFailure(cluster: RestoredCluster, cause: unknown): SafeRunError {
  return new SafeRunError(
    `The restored cluster in ${cluster.dataDir} did not come up: ${errorMessage(cause).split('\n')[0]}\n${logTail(cluster.logFile)}`,
    ExitCode.backupFailed,
    'Read the server log above: "recovery ended before configured recovery target was reached" means the WAL up to the run is not in the archive (`pgbackrest info`).',
    { cause },
  );
}

function logTail(file: string): string {
  try {
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n').slice(-8);
    return lines.map((l) => `  | ${l}`).join('\n');
  } catch {
    return `  (no server log at ${file})`;
  }
}

/** The port given, if free; else any free loopback port. */
export async function choosePort(wanted: number | null): Promise<number> {
  const port = await freeLoopbackPort(wanted ?? 0).catch(() => null);
  if (port === null) throw usageError(`Port ${wanted} is in use.`, 'Pick a free port with --port, or leave --port out to get one.');
  return port;
}
