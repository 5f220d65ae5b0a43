// The throwaway PostgreSQL the tests, the demo and the bench start: support code, never imported by src/.
import { execa, type Options as ExecaOptions } from 'execa';
import { spawnSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { SafeRunError, ExitCode, errorMessage } from '../../src/errors.js';
import { findBinDir } from '../../src/backup/pg-bin-dirs.js';
import { clusterOwner, type OsUser } from '../../src/backup/cluster-owner.js';
import { freeLoopbackPort, startCluster } from '../../src/backup/pg-cluster.js';

/**
 * A throwaway PostgreSQL cluster for the tests, the demo and the benchmarks: initdb into a
 * temp dir, pg_ctl start on a free port, removed again on stop or on SIGINT/SIGTERM.
 * It never touches a cluster someone else left running.
 */
export interface ThrowawayPostgres {
  /** Superuser URL of the `postgres` database. */
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** The data directory (`<dir>/data`); empty for an existing server. */
  readonly dataDir: string;
  /** The OS user the server runs as when we are root (null: ourselves). Files pgBackRest writes for it must be theirs. */
  readonly owner: OsUser | null;
  /** Directory of initdb, pg_ctl and postgres; empty for an existing server. */
  readonly binDir: string;
  /** True when we started it (false when an existing server from the environment is used). */
  readonly owned: boolean;
  stop(): Promise<void>;
}

export interface ThrowawayOptions {
  /** An existing server to use instead (DATABASE_URL or TEST_DATABASE_URL). */
  readonly existingUrl?: string;
  readonly binDir?: string;
  /** Extra `-c name=value` server settings. */
  readonly settings?: Readonly<Record<string, string>>;
  /** Runs after initdb, before the first start (e.g. to write a pgBackRest config that names the data directory). */
  readonly beforeStart?: (cluster: { readonly dir: string; readonly dataDir: string; readonly port: number }) => void | Promise<void>;
}

const SERVER_PROGRAMS = ['initdb', 'pg_ctl', 'postgres'];

export async function startThrowawayPostgres(options: ThrowawayOptions = {}): Promise<ThrowawayPostgres> {
  if (options.existingUrl) {
    return {
      url: options.existingUrl,
      port: Number(new URL(options.existingUrl).port || 5432),
      dir: '',
      dataDir: '',
      owner: null,
      binDir: '',
      owned: false,
      stop: async () => {},
    };
  }
  const bins = findBinDir(SERVER_PROGRAMS, options.binDir ?? process.env.SAFE_RUN_PG_BIN);
  if (!bins) {
    throw new SafeRunError(
      'PostgreSQL server programs (initdb, pg_ctl, postgres) not found on PATH or in /usr/lib/postgresql/*/bin.',
      ExitCode.usage,
      'Install them (Debian: apt-get install postgresql) or start one with `docker compose up -d` and set DATABASE_URL.',
    );
  }
  const runAs = await clusterOwner();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'safe-run-pg-'));
  if (runAs) chownSync(dir, runAs.uid, runAs.gid);
  const dataDir = path.join(dir, 'data');
  const port = await freeLoopbackPort();
  const asOwner: ExecaOptions = runAs ? { uid: runAs.uid, gid: runAs.gid, cwd: dir } : { cwd: dir };
  const bin = (name: string): string => path.join(bins.binDir, name);

  let started = false;
  const stop = async (): Promise<void> => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', onExit);
    if (started) {
      started = false;
      await execa(bin('pg_ctl'), ['-D', dataDir, '-m', 'immediate', '-w', 'stop'], { ...asOwner, reject: false });
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // A Ctrl-C during tests or the demo must not leave a server or a data dir behind.
  const onSignal = (signal: NodeJS.Signals): void => {
    void stop().finally(() => process.kill(process.pid, signal));
  };
  const onExit = (): void => stopSync(bin('pg_ctl'), dataDir, dir, runAs);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('exit', onExit);

  try {
    await execa(bin('initdb'), ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync'], asOwner);
    writeFileSync(path.join(dataDir, 'postgresql.auto.conf'), serverConfig(port, dir, options.settings ?? {}));
    await options.beforeStart?.({ dir, dataDir, port });
    await startCluster({ binDir: bins.binDir, dataDir, logFile: path.join(dir, 'server.log'), owner: runAs });
    started = true;
    const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    await waitUntilReady(url);
    return { url, port, dir, dataDir, owner: runAs, binDir: bins.binDir, owned: true, stop };
  } catch (error) {
    await stop();
    throw new SafeRunError(`Could not start a throwaway PostgreSQL: ${errorMessage(error)}`, ExitCode.usage, undefined, { cause: error });
  }
}

function serverConfig(port: number, socketDir: string, settings: Readonly<Record<string, string>>): string {
  const all: Record<string, string> = {
    port: String(port),
    listen_addresses: "'127.0.0.1'",
    unix_socket_directories: `'${socketDir}'`,
    // A throwaway cluster trades durability for speed; it is deleted afterwards anyway.
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    max_connections: '200',
    ...settings,
  };
  return Object.entries(all)
    .map(([k, v]) => `${k} = ${v}\n`)
    .join('');
}

function stopSync(pgCtl: string, dataDir: string, dir: string, runAs: { uid: number; gid: number } | null): void {
  try {
    // At process exit only synchronous work runs, so this is the last-resort cleanup path.
    spawnSync(pgCtl, ['-D', dataDir, '-m', 'immediate', '-w', 'stop'], { stdio: 'ignore', ...(runAs ?? {}) });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function waitUntilReady(url: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      await client.query('select 1');
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      await client.end().catch(() => {});
    }
  }
}
