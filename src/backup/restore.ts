import { sql } from 'kysely';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Db } from '../db/connection.js';
import { ExitCode, SafeRunError, errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import type { TableKey } from '../records/index.js';
import { listArchive, type TocEntry } from './archive.js';
import { pgChildEnv } from './child-env.js';
import { runPgRestore } from './pg-restore.js';
import { resolvePgTool } from './pg-tools.js';
import { copyPrerequisites, schemasOfTables } from './restore-schemas.js';

export interface RestoreOptions {
  /** A run's archive: `<evidenceDir>/<backup.path>`. */
  readonly archivePath: string;
  readonly targetUrl: URL;
  /** The same database as targetUrl, on the caller's pool: missing schemas are created through it. */
  readonly targetDb: Db;
  /** Restore the rows of these tables only; every table's definition is restored regardless. */
  readonly tables?: readonly TableKey[];
  readonly pgBinDir: string | null;
  readonly serverMajor: number;
  readonly log: Logger;
  /** Drop the archive's objects first (for --into a database that has them). */
  readonly clean?: boolean;
  /** Keep foreign keys; off by default, see restoreBackup. */
  readonly foreignKeys?: boolean;
  /**
   * The live database, to copy what a touched-scope archive does not carry: schemas,
   * extensions, types and functions (an enum-typed column needs its enum). Without it
   * only the schemas are created.
   */
  readonly prerequisitesFrom?: URL;
}

export interface RestoreResult {
  /** The tables whose rows were restored. */
  readonly tables: readonly string[];
  readonly pgRestore: { readonly path: string; readonly version: string };
  readonly durationMs: number;
}

/**
 * Restores a run's backup (the `restore` command), by default into a scratch database.
 *
 * - A touched-scope archive holds its tables but not their schemas (pg_dump --table never
 *   dumps what a table depends on), so the schemas are created first.
 * - Foreign keys are left out unless asked for: the archive holds a cascade closure, and
 *   a child's key to a parent outside it (usage_events -> models) cannot be validated in a
 *   scratch database. The rows are what an operator restores; the live database keeps its
 *   constraints.
 * - One transaction (--single-transaction, --exit-on-error): all rows or none.
 * - Credentials go through PG* variables; argv names only the database.
 */
export async function restoreBackup(options: RestoreOptions): Promise<RestoreResult> {
  const started = performance.now();
  const pgRestore = await resolvePgTool('pg_restore', options.serverMajor, options.pgBinDir);
  const env = pgChildEnv(options.targetUrl, 'safe-run restore');
  const work = await mkdtemp(path.join(os.tmpdir(), 'safe-run-restore-'));
  try {
    const entries = await listArchive(pgRestore.path, options.archivePath, env).catch((error: unknown) => {
      throw restoreFailed(`cannot read ${options.archivePath}: ${errorMessage(error)}`, error);
    });
    const kept = entries.filter((e) => keepEntry(e, options));
    // A full archive has its SCHEMA entries; a --table archive has none and needs help.
    if (!entries.some((e) => e.type === 'SCHEMA')) {
      if (options.prerequisitesFrom) {
        await copyPrerequisites({ ...options, prerequisitesFrom: options.prerequisitesFrom }, pgRestore.path, work);
      } else {
        await createSchemas(options.targetDb, await schemasOfTables(pgRestore.path, options.archivePath, entries, env, work));
      }
    }
    await runPgRestore({
      bin: pgRestore.path,
      archive: options.archivePath,
      target: options.targetUrl,
      items: kept,
      clean: options.clean,
      log: options.log,
    });
    const data = kept.filter((e) => e.type === 'TABLE DATA');
    const tables = options.tables
      ? options.tables.filter((key) => data.some((e) => entryIsTable(e, key)))
      : // Display only: `schema name` joined at its first space.
        data.map((e) => e.rest.slice(0, e.rest.lastIndexOf(' ')).replace(' ', '.'));
    return { tables, pgRestore: { path: pgRestore.path, version: pgRestore.version }, durationMs: Math.round(performance.now() - started) };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function keepEntry(entry: TocEntry, options: RestoreOptions): boolean {
  if (entry.type === 'FK CONSTRAINT') return options.foreignKeys === true;
  if (entry.type === 'TABLE DATA' && options.tables) return options.tables.some((key) => entryIsTable(entry, key));
  return true;
}

/** `schema name owner` against a `schema.table` key, trying each dot: names may contain dots. */
function entryIsTable(entry: TocEntry, key: TableKey): boolean {
  for (let i = key.indexOf('.'); i >= 0; i = key.indexOf('.', i + 1)) {
    if (entry.rest.startsWith(`${key.slice(0, i)} ${key.slice(i + 1)} `)) return true;
  }
  return false;
}

async function createSchemas(db: Db, schemas: readonly string[]): Promise<void> {
  for (const schema of schemas) await sql`create schema if not exists ${sql.id(schema)}`.execute(db);
}

function restoreFailed(message: string, cause?: unknown): SafeRunError {
  // Restore failures are not a backup failure of a run, but exit 4 is the contract's
  // "backup could not be used" code, the closest fit.
  return new SafeRunError(
    `Restore failed: ${message}`,
    ExitCode.backupFailed,
    'Nothing was committed to the target database (the restore runs in one transaction).',
    { cause },
  );
}

/**
 * A new, empty database for a restore, on the server `adminDb` is connected to. From
 * template0 so nothing the server's template1 holds gets mixed into the evidence.
 */
export async function createScratchDatabase(adminDb: Db, name: string): Promise<void> {
  await sql`create database ${sql.id(name)} template template0`.execute(adminDb);
}
