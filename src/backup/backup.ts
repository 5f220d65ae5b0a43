import { execa } from 'execa';
import { existsSync, mkdirSync } from 'node:fs';
import { rm, stat, writeFile } from 'node:fs/promises';
import { fsyncDir } from '../audit/jsonl.js';
import { EVIDENCE_DIR_MODE, EVIDENCE_FILE_MODE } from '../audit/modes.js';
import { restrictToOwner } from './private-files.js';
import path from 'node:path';
import { errorMessage, ExitCode, SafeRunError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { BackupRecord, TableKey } from '../records/index.js';
import { hasTableEntry, hashDirectory, hashFile, listArchive } from './archive.js';
import { pgChildEnv } from './child-env.js';
import { pgDumpArgs } from './pg-dump-args.js';
import { resolvePgTool } from './pg-tools.js';
import type { BackupScope } from './scope.js';
import { lookupBackupTables, type BackupTable } from './tables.js';
import type { Db } from '../db/connection.js';
import { noProgress, type Progress } from '../progress.js';
import { DumpProgress, dumpErrors } from './dump-progress.js';
import { byCodeUnit } from '../text-order.js';

export interface BackupOptions {
  /** The target's pool (the caller's): the table lookup reads through it, inside the exported snapshot. */
  readonly db: Db;
  /** For pg_dump, a child process that needs a URL of its own. */
  readonly url: URL;
  /** The pre-snapshot's exported id, so the archive holds exactly the rows it counted. */
  readonly snapshotId: string | null;
  readonly scope: BackupScope;
  /** The scope's tables (backupScope); ignored for 'full', which holds every user table. */
  readonly tables: readonly TableKey[];
  /**
   * The tables as the run's scope graph read them, under its lock, just before the snapshot
   * (ScopeGraph.existing). When they name every table in scope, pg_dump starts at once instead
   * of after a reading of its own. A table dropped in between still fails the backup: pg_dump's
   * --strict-names refuses a name that matches nothing, and the archive is checked table by table.
   */
  readonly known?: ReadonlyMap<TableKey, BackupTable>;
  readonly evidenceDir: string;
  readonly runId: string;
  readonly compress: number;
  readonly jobs: number;
  readonly lockWaitTimeoutMs: number;
  readonly pgBinDir: string | null;
  readonly serverMajor: number;
  readonly log: Logger;
  /** Aborted on SIGINT/SIGTERM: pg_dump is stopped at once and the partial archive removed. */
  readonly signal?: AbortSignal;
  /** Tables done of the tables in scope, bytes, elapsed, on a terminal (noProgress elsewhere). */
  readonly progress?: Progress;
}

const NEXT_STEP =
  'The script did not run. Fix the cause above and run it again; `safe-run doctor` checks pg_dump and the evidence directory.';

/**
 * Step 5 of the guarded run: pg_dump on the exported snapshot into
 * `<evidenceDir>/backups/<runId>.dump` (custom format, streamed and hashed on the way to
 * disk, never held in memory) or `<runId>.dir` (directory format, when jobs > 1), then
 * `pg_restore --list` to prove every table in scope has its data in the archive.
 * Any failure removes what was written and throws exit 4: the script must not run
 * without the backup it was promised.
 */
export async function runBackup(options: BackupOptions): Promise<BackupRecord> {
  try {
    return await backup(options);
  } catch (error) {
    if (error instanceof SafeRunError) throw error;
    const message = errorMessage(error);
    throw new SafeRunError(`Backup failed: ${message}`, ExitCode.backupFailed, nextStep(message), { cause: error });
  }
}

function nextStep(message: string): string {
  if (/LOCK TABLE|lock timeout|statement timeout/i.test(message)) {
    return 'Another session holds a conflicting lock on a table in scope (look in pg_locks). The script did not run. Retry when it is done, or raise "backup.lockWaitTimeout".';
  }
  return NEXT_STEP;
}

/**
 * The record of a backup that did not happen, for the intent entry: a run or an exec whose
 * backup failed still records what was attempted and why, then runs nothing.
 */
export function failedBackupRecord(scope: BackupScope, tables: readonly TableKey[], error: unknown): BackupRecord {
  return {
    scope,
    status: 'failed',
    path: null,
    format: null,
    sha256: null,
    bytes: 0,
    tables,
    pgDump: null,
    durationMs: 0,
    error: errorMessage(error),
  };
}

/** No archive was written: scope none, nothing in scope, or a dry run (it commits nothing to restore from). */
export function skippedBackupRecord(scope: BackupScope, durationMs = 0): BackupRecord {
  return { scope, status: 'skipped', path: null, format: null, sha256: null, bytes: 0, tables: [], pgDump: null, durationMs };
}

/** The scope's tables from `known`, in lookupBackupTables' order; null when it lacks one (or for 'full'). */
function knownTables(options: BackupOptions): BackupTable[] | null {
  if (!options.known || options.scope === 'full') return null;
  const tables: BackupTable[] = [];
  for (const key of options.tables) {
    const table = options.known.get(key);
    if (!table) return null;
    tables.push(table);
  }
  return tables.sort((a, b) => byCodeUnit(a.key, b.key));
}

async function backup(options: BackupOptions): Promise<BackupRecord> {
  const started = performance.now();
  const skipped = (tables: readonly TableKey[]): BackupRecord => ({
    ...skippedBackupRecord(options.scope, Math.round(performance.now() - started)),
    tables,
  });
  if (options.scope === 'none') return skipped([]);

  // Independent look-ups (two version probes and a catalog read): side by side, not in turn.
  const [pgDump, pgRestore, tables] = await Promise.all([
    resolvePgTool('pg_dump', options.serverMajor, options.pgBinDir),
    resolvePgTool('pg_restore', options.serverMajor, options.pgBinDir),
    knownTables(options) ?? lookupBackupTables(options.db, options.snapshotId, options.scope === 'full' ? null : options.tables),
  ]);
  if (options.scope === 'touched' || options.scope === 'guarded') {
    // A table the caller put in scope and that is gone must fail loudly, not shrink the backup.
    const missing = options.tables.filter((key) => !tables.some((t) => t.key === key));
    if (missing.length) throw new Error(`no such table in the database: ${missing.join(', ')}`);
    // Without --table, pg_dump would dump everything: an empty scope means nothing to keep.
    if (tables.length === 0) return skipped([]);
  }

  const dir = path.join(options.evidenceDir, 'backups');
  try {
    // Synchronous, as existsSync below: the directory is there after the first run, and an
    // asynchronous call waited its turn behind the snapshot's reads (3-27 ms) with pg_dump not started.
    mkdirSync(dir, { recursive: true, mode: EVIDENCE_DIR_MODE });
  } catch (error) {
    throw new SafeRunError(
      `Cannot create the backup directory ${dir}: ${errorMessage(error)}`,
      ExitCode.backupFailed,
      'Point "evidenceDir" (or SAFE_RUN_EVIDENCE_DIR) at a writable directory. The script did not run.',
      { cause: error },
    );
  }
  const format = options.jobs > 1 ? 'directory' : 'custom';
  const target = path.join(dir, `${options.runId}.${format === 'custom' ? 'dump' : 'dir'}`);
  if (existsSync(target)) throw new Error(`${target} already exists; a backup is never overwritten`);
  const env = pgChildEnv(options.url, 'safe-run backup');
  const progress = options.progress ?? noProgress;
  const args = pgDumpArgs({
    ...options,
    scope: options.scope,
    tables,
    output: target,
    verbose: progress.active,
  });
  options.log.debug('pg_dump', { bin: pgDump.path, args, tables: tables.length });

  // A partitioned parent's rows are dumped as its leaves': only tables with data count.
  const watch: DumpWatch = { signal: options.signal, progress: new DumpProgress(progress, tables.filter((t) => !t.partitioned).length) };
  try {
    const written =
      format === 'custom'
        ? await dumpToFile(pgDump.path, args, env, target, watch)
        : await dumpToDirectory(pgDump.path, args, env, target, watch);
    watch.progress.stop();
    await restrictToOwner(target);
    // On disk before the intent names it, and so before the script can run: pg_dump syncs what
    // it writes itself (no --no-sync), and the directory entry is synced here.
    await verifyArchive(pgRestore.path, target, env, tables);
    await fsyncDir(dir);
    const record: BackupRecord = {
      scope: options.scope,
      status: 'verified',
      path: path.relative(options.evidenceDir, target),
      format,
      sha256: written.sha256,
      bytes: written.bytes,
      tables: tables.map((t) => t.key),
      pgDump: { path: pgDump.path, version: pgDump.version },
      durationMs: Math.round(performance.now() - started),
    };
    options.log.info('backup verified', { path: record.path, bytes: record.bytes, tables: record.tables.length, sha256: record.sha256 });
    return record;
  } catch (error) {
    watch.progress.stop();
    // A partial archive must not look like evidence.
    await rm(target, { recursive: true, force: true }).catch(() => {});
    throw error;
  }
}

interface DumpWatch {
  readonly signal: AbortSignal | undefined;
  readonly progress: DumpProgress;
}

interface Written {
  readonly sha256: string;
  readonly bytes: number;
}

/**
 * The custom format, written by pg_dump straight to the file, then hashed as it was written.
 * Through this process it waited on a 64 kB pipe whenever the main thread was busy (judging
 * the script, signing, the snapshot's rows), and the archive had no data offsets in its table
 * of contents: pg_restore of one table then read the whole file. The file is created here,
 * exclusively and private, so that pg_dump never overwrites evidence and never makes the file
 * readable by others, even for a moment.
 */
async function dumpToFile(
  bin: string,
  args: readonly string[],
  env: Record<string, string>,
  target: string,
  watch: DumpWatch,
): Promise<Written> {
  await writeFile(target, '', { flag: 'wx', mode: EVIDENCE_FILE_MODE });
  const child = execa(bin, args, childOptions(env, watch));
  child.stderr.on('data', (chunk: Buffer) => watch.progress.stderr(chunk));
  // The bar's byte count, from the file's size: pg_dump tells nothing of it. A size read
  // still on its way when pg_dump ends is dropped, so the bar is never drawn after it stops.
  let dumping = true;
  const sizing = setInterval(() => {
    stat(target).then(
      (info) => dumping && watch.progress.written(info.size),
      () => {},
    );
  }, 250);
  const result = await child.finally(() => {
    dumping = false;
    clearInterval(sizing);
  });
  assertNotInterrupted(watch);
  if (result.exitCode !== 0) throw new Error(childFailure('pg_dump', result));
  return { sha256: await hashFile(target), bytes: (await stat(target)).size };
}

async function dumpToDirectory(
  bin: string,
  args: readonly string[],
  env: Record<string, string>,
  target: string,
  watch: DumpWatch,
): Promise<Written> {
  const child = execa(bin, args, childOptions(env, watch));
  child.stderr.on('data', (chunk: Buffer) => watch.progress.stderr(chunk));
  const result = await child;
  assertNotInterrupted(watch);
  if (result.exitCode !== 0) throw new Error(childFailure('pg_dump', result));
  return hashDirectory(target);
}

/**
 * A terminal's Ctrl-C reaches pg_dump too, but `kill -INT <pid>`, a supervisor or a CI
 * runner signals safe-run alone: the interrupt stops pg_dump through `cancelSignal`, at
 * once, instead of waiting for a dump nobody will use.
 */
function childOptions(env: Record<string, string>, watch: DumpWatch) {
  return {
    env,
    extendEnv: false,
    stdin: 'ignore',
    reject: false,
    ...(watch.signal ? { cancelSignal: watch.signal, forceKillAfterDelay: 2000 } : {}),
  } as const;
}

function assertNotInterrupted(watch: DumpWatch): void {
  if (watch.signal?.aborted) throw new Error('interrupted: pg_dump was stopped and the partial archive removed');
}

async function verifyArchive(
  pgRestore: string,
  archive: string,
  env: Record<string, string>,
  tables: readonly BackupTable[],
): Promise<void> {
  const entries = await listArchive(pgRestore, archive, env);
  const missing = tables.filter((t) => !hasTableEntry(entries, t.partitioned ? 'TABLE' : 'TABLE DATA', t));
  if (missing.length) {
    throw new Error(`the archive has no data for ${missing.map((t) => t.key).join(', ')} (pg_restore --list)`);
  }
}

function childFailure(program: string, result: { exitCode?: number; signal?: string; stderr?: unknown }): string {
  const stderr = dumpErrors(String(result.stderr ?? '')).trim();
  const how = result.signal ? `killed by ${result.signal}` : `exit ${result.exitCode}`;
  return `${program} failed (${how})${stderr ? `: ${stderr}` : ''}`;
}
