import { execa } from 'execa';
import { chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { clusterOwner, type OsUser } from '../../src/backup/cluster-owner.js';
import { startThrowawayPostgres, type ThrowawayPostgres } from './postgres.js';

// Support code for the tests and the bench, never imported by src/.

/**
 * A throwaway cluster archiving its WAL into a local pgBackRest repository, with a stanza and
 * one full backup: what an operator sets up before using backup.mode "pgbackrest".
 * Everything lives in one temp dir owned by the server's OS user (pgBackRest runs as it).
 */
export interface PgBackRestCluster {
  readonly server: ThrowawayPostgres;
  readonly stanza: string;
  readonly configPath: string;
  readonly root: string;
  readonly owner: OsUser | null;
  /** Runs `pgbackrest <args>` with this cluster's config, as the server's OS user. */
  pgbackrest(args: readonly string[]): Promise<string>;
  stop(): Promise<void>;
}

export async function startPgBackRestCluster(stanza = 'safe_run_test'): Promise<PgBackRestCluster> {
  const owner = await clusterOwner();
  const root = mkdtempSync(path.join(os.tmpdir(), 'safe-run-pgbackrest-'));
  for (const sub of ['repo', 'log', 'lock', 'spool']) mkdirSync(path.join(root, sub));
  const configPath = path.join(root, 'pgbackrest.conf');
  const server = await startThrowawayPostgres({
    settings: {
      wal_level: 'replica',
      archive_mode: 'on',
      archive_command: `'pgbackrest --config=${configPath} --stanza=${stanza} archive-push %p'`,
    },
    // The config names the data directory, known only once initdb made it.
    beforeStart: ({ dir, dataDir, port }) => {
      writeFileSync(
        configPath,
        [
          '[global]',
          `repo1-path=${path.join(root, 'repo')}`,
          `log-path=${path.join(root, 'log')}`,
          `lock-path=${path.join(root, 'lock')}`,
          `spool-path=${path.join(root, 'spool')}`,
          'log-level-file=off',
          'compress-type=none',
          'start-fast=y',
          'archive-timeout=30',
          '',
          `[${stanza}]`,
          `pg1-path=${dataDir}`,
          `pg1-port=${port}`,
          `pg1-socket-path=${dir}`,
          'pg1-user=postgres',
          '',
        ].join('\n'),
      );
      if (owner) chownTree(root, owner);
    },
  });
  const pgbackrest = async (args: readonly string[]): Promise<string> => {
    const result = await execa('pgbackrest', [`--config=${configPath}`, `--stanza=${stanza}`, ...args], {
      ...(owner ?? {}),
      cwd: root,
    });
    return String(result.stdout);
  };
  try {
    await pgbackrest(['stanza-create']);
    await pgbackrest(['--type=full', 'backup']);
  } catch (error) {
    await server.stop();
    rmSync(root, { recursive: true, force: true });
    throw error;
  }
  return {
    server,
    stanza,
    configPath,
    root,
    owner,
    pgbackrest,
    stop: async () => {
      await server.stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

function chownTree(root: string, owner: OsUser): void {
  for (const p of [root, ...['repo', 'log', 'lock', 'spool', 'pgbackrest.conf'].map((s) => path.join(root, s))]) {
    chownSync(p, owner.uid, owner.gid);
  }
}
