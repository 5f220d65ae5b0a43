import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { openSync, closeSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { sql } from 'kysely';
import { runBackup, type BackupOptions } from '../../src/backup/backup.js';
import { pgChildEnv } from '../../src/backup/child-env.js';
import { pgDumpArgs } from '../../src/backup/pg-dump-args.js';
import { resolvePgTool } from '../../src/backup/pg-tools.js';
import { backupScope } from '../../src/backup/scope.js';
import { lookupBackupTables } from '../../src/backup/tables.js';
import type { Config } from '../../src/config/config.js';
import { createDb, type Db } from '../../src/db/connection.js';
import { silentLogger } from '../../src/logger.js';
import type { BackupRecord } from '../../src/records/index.js';
import { loadScriptFile } from '../../src/script/load.js';
import type { BenchDatabase } from '../data.js';
import { alternate, timeMs, type SideSamples } from '../measure.js';
import { cleanupScriptPath, type Workspace } from '../workspace.js';

/**
 * safe-run's backup step (runBackup: resolve pg_dump, look the tables up, dump, hash,
 * verify with pg_restore --list) against pg_dump alone with the very same argv, written
 * straight to a file as `pg_dump ... > file` would. Both read the same exported snapshot,
 * as in a guarded run. Archives are deleted after each run, untimed.
 */
interface BackupKind {
  readonly scope: 'touched' | 'full';
  readonly jobs: number;
  /** Raw side only: the directory format even at jobs=1 (safe-run picks it only for jobs>1). */
  readonly directory?: boolean;
}

export class BackupBench {
  private seq = 0;
  private constructor(
    private readonly bench: BenchDatabase,
    private readonly ws: Workspace,
    private readonly config: Config,
    private readonly db: Db,
    private readonly serverMajor: number,
    readonly touchedTables: readonly string[],
  ) {}

  static async open(bench: BenchDatabase, ws: Workspace): Promise<BackupBench> {
    const config = await ws.config(bench.url);
    const db = createDb(bench.url, { maxConnections: 2, applicationName: 'safe-run-bench-backup' });
    const { rows } = await sql<{ v: number }>`select current_setting('server_version_num')::int as v`.execute(db);
    const script = await loadScriptFile(cleanupScriptPath);
    const touched = await backupScope(db, Object.keys(script.touches), 'touched');
    return new BackupBench(bench, ws, config, db, Math.floor(rows[0]!.v / 10000), touched);
  }

  async close(): Promise<void> {
    await this.db.destroy();
  }

  /** One exporting transaction per run, held open while the dump imports its snapshot, as takeSnapshot does. */
  private async withSnapshot<T>(fn: (snapshotId: string) => Promise<T>): Promise<T> {
    return this.db
      .transaction()
      .setIsolationLevel('repeatable read')
      .setAccessMode('read only')
      .execute(async (trx) => fn((await sql<{ id: string }>`select pg_export_snapshot() as id`.execute(trx)).rows[0]!.id));
  }

  private options(kind: BackupKind, snapshotId: string): BackupOptions {
    return {
      db: this.db,
      url: new URL(this.bench.url),
      snapshotId,
      scope: kind.scope,
      tables: kind.scope === 'full' ? [] : this.touchedTables,
      evidenceDir: this.ws.evidenceDir,
      runId: `bench-${process.pid}-${++this.seq}`,
      compress: this.config.backup.compress,
      jobs: kind.jobs,
      lockWaitTimeoutMs: this.config.backup.lockWaitTimeoutMs,
      pgBinDir: this.config.pgBinDir,
      serverMajor: this.serverMajor,
      log: silentLogger,
    };
  }

  /** safe-run's step; returns the time and the record (bytes) of the archive it wrote. */
  async safeRun(kind: BackupKind): Promise<{ ms: number; record: BackupRecord }> {
    return this.withSnapshot(async (snapshotId) => {
      let record: BackupRecord | undefined;
      const ms = await timeMs(async () => {
        record = await runBackup(this.options(kind, snapshotId));
      });
      await rm(path.join(this.ws.evidenceDir, record!.path!), { recursive: true, force: true });
      return { ms, record: record! };
    });
  }

  /** pg_dump alone, with the argv safe-run would give it; resolving the binary and the table names is left out. */
  async raw(kind: BackupKind): Promise<number> {
    const pgDump = await resolvePgTool('pg_dump', this.serverMajor, this.config.pgBinDir);
    const url = new URL(this.bench.url);
    const dir = path.join(this.ws.dir, 'raw');
    await mkdir(dir, { recursive: true });
    const directory = kind.directory === true || kind.jobs > 1;
    const target = path.join(dir, `raw-${++this.seq}.${directory ? 'dir' : 'dump'}`);
    return this.withSnapshot(async (snapshotId) => {
      const options = this.options(kind, snapshotId);
      const tables = kind.scope === 'full' ? [] : await lookupBackupTables(this.db, snapshotId, this.touchedTables);
      // pgDumpArgs only writes a directory for jobs>1; ask for 2 and set the real count back.
      const args = pgDumpArgs({
        ...options,
        jobs: directory ? Math.max(2, kind.jobs) : 1,
        scope: kind.scope,
        tables,
        output: directory ? target : undefined,
      }).map((a) => (a.startsWith('--jobs=') ? `--jobs=${kind.jobs}` : a));
      const env = pgChildEnv(url, 'raw pg_dump');
      const fd = directory ? null : openSync(target, 'wx');
      try {
        return await timeMs(() => runToCompletion(pgDump.path, args, env, fd));
      } finally {
        if (fd !== null) closeSync(fd);
        await rm(target, { recursive: true, force: true });
      }
    });
  }
}

/** `pg_dump ... > file`: the archive goes straight to the file descriptor, no stream in between. */
async function runToCompletion(bin: string, args: readonly string[], env: Record<string, string>, stdoutFd: number | null): Promise<void> {
  const child = spawn(bin, args, { env, stdio: ['ignore', stdoutFd ?? 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) throw new Error(`pg_dump failed (exit ${code}): ${stderr.trim()}`);
}

export interface BackupComparison {
  readonly rawFull: SideSamples;
  readonly safeRunFull: SideSamples;
  readonly safeRunTouched: SideSamples;
  readonly rawTouched: SideSamples;
  readonly bytes: { readonly full: number; readonly touched: number };
  readonly touchedTables: readonly string[];
}

/**
 * Four sides in rotation: raw and safe-run full dumps (wrapper overhead where it matters,
 * on a dump that takes seconds), safe-run touched (scoped against full) and raw touched
 * (the wrapper's fixed cost on a small dump).
 */
export async function compareBackups(bb: BackupBench, rounds: number): Promise<BackupComparison> {
  const bytes = { full: 0, touched: 0 };
  const full: BackupKind = { scope: 'full', jobs: 1 };
  const touched: BackupKind = { scope: 'touched', jobs: 1 };
  const [rawFull, safeRunFull, safeRunTouched, rawTouched] = await alternate(
    [
      { name: 'raw pg_dump, full', run: () => bb.raw(full) },
      {
        name: 'safe-run backup, full',
        run: async () => {
          const r = await bb.safeRun(full);
          bytes.full = r.record.bytes;
          return r.ms;
        },
      },
      {
        name: 'safe-run backup, touched',
        run: async () => {
          const r = await bb.safeRun(touched);
          bytes.touched = r.record.bytes;
          return r.ms;
        },
      },
      { name: 'raw pg_dump, touched', run: () => bb.raw(touched) },
    ],
    // The data is warm from the snapshot comparisons already; a warm-up would cost two more full dumps.
    { rounds, label: 'backup', warmup: false },
  );
  return {
    rawFull: rawFull!,
    safeRunFull: safeRunFull!,
    safeRunTouched: safeRunTouched!,
    rawTouched: rawTouched!,
    bytes,
    touchedTables: bb.touchedTables,
  };
}

export interface ParallelComparison {
  readonly rawJobs2: SideSamples;
  readonly rawJobs1: SideSamples;
  readonly safeRunJobs2: SideSamples;
}

/**
 * jobs=2 against jobs=1, both in the directory format. safe-run only writes that format for
 * jobs>1, so the pair that isolates parallelism is pg_dump's own (-Fd -j2 against -Fd -j1);
 * safe-run's jobs=2 runs alongside, so its wrapper cost on a directory archive (hashing
 * every file) is visible too.
 */
export async function compareParallel(bb: BackupBench, rounds: number): Promise<ParallelComparison> {
  const [rawJobs2, rawJobs1, safeRunJobs2] = await alternate(
    [
      { name: 'pg_dump -Fd -j2', run: () => bb.raw({ scope: 'full', jobs: 2 }) },
      { name: 'pg_dump -Fd -j1', run: () => bb.raw({ scope: 'full', jobs: 1, directory: true }) },
      { name: 'safe-run full, jobs=2', run: async () => (await bb.safeRun({ scope: 'full', jobs: 2 })).ms },
    ],
    { rounds, label: 'parallel backup', warmup: false },
  );
  return { rawJobs2: rawJobs2!, rawJobs1: rawJobs1!, safeRunJobs2: safeRunJobs2! };
}
