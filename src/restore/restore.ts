import os from 'node:os';
import path from 'node:path';
import { databaseAnchor, openAuditLog } from '../audit/log.js';
import { listArchive } from '../backup/archive.js';
import { pgChildEnv } from '../backup/child-env.js';
import { resolvePgTool } from '../backup/pg-tools.js';
import { runPgRestore } from '../backup/pg-restore.js';
import { restoreBackup } from '../backup/restore.js';
import type { Config } from '../config/config.js';
import { withDatabaseAt, type TargetHandle } from '../db/target.js';
import { withClient, type Db } from '../db/connection.js';
import { readIdentity, serverMajor } from '../db/identity.js';
import { withAdvisoryLock } from '../db/lock.js';
import { parseDatabaseUrl, redactUrl, withDatabase } from '../db/url.js';
import type { Logger } from '../logger.js';
import { readOperator } from '../run/operator.js';
import { connectionOf, dropdbCommand, psqlCommand } from '../db/conninfo.js';
import { suggest } from '../shell-quote.js';
import { takeSnapshot } from '../snapshot/take.js';
import type { RestoreBody, Snapshot, TableKey } from '../records/index.js';
import { assertHasBackup, verifiedArchive, type VerifiedArchive } from './archive-check.js';
import { findRestorableRun } from './find-run.js';
import { createScratchDatabase, dropDatabase, scratchDatabaseName } from './scratch.js';
import { restoreTables } from './tables.js';
import { assertEmptyTargets, countTables, orderByForeignKeys, type RestoreTable } from './target-tables.js';
import { dataEntries } from './toc.js';
import type { RestoreOptions, RestoreResult } from './types.js';

/**
 * `safe-run restore`: find the run's signed intent, prove its archive is the one it signed,
 * restore into a new scratch database (or, with --into, fill empty existing tables), count
 * what arrived, and record a signed `restore` entry.
 */
export async function restoreRun(config: Config, options: RestoreOptions, target: TargetHandle, log: Logger): Promise<RestoreResult> {
  const run = await findRestorableRun(config.evidenceDir, options.run);
  const { runId } = run;
  assertHasBackup(runId, run.backup);
  const tables = restoreTables(run, options.tables);
  // Parsed first: a bad --into must stop the restore before anything connects.
  const into = options.into ? parseDatabaseUrl(options.into) : null;
  // The configured database: it holds the anchor, and its server gets the scratch database.
  const { db: admin, url: serverUrl } = await target.open();
  // Opened first: a missing key must stop the restore before it creates anything.
  const audit = await openAuditLog({
    evidenceDir: config.evidenceDir,
    signingKeyPath: config.signingKey,
    anchor: databaseAnchor(admin),
    log,
  });
  const archive = await verifiedArchive(config.evidenceDir, runId, run.backup);
  log.info('archive matches the signed intent', { path: archive.path, sha256: archive.sha256 });
  const job: RestoreJob = { config, archive, tables, subset: options.tables.length > 0, log };
  const restored = into
    ? await restoreInto(job, into)
    : await restoreIntoScratch(job, admin, serverUrl, scratchDatabaseName(run.snapshot.database.name, runId));

  const pre = run.snapshot.tables;
  const counts = Object.fromEntries(
    tables.map((t) => [
      t.key,
      { restored: restored.counts[t.key] ?? 0, pre: pre[t.key]?.rows ?? null, preKind: pre[t.key]?.rowsKind ?? null },
    ]),
  );
  const body: RestoreBody = {
    runId,
    source: run.source,
    intent: { kind: run.kind, seq: run.seq, hash: run.hash },
    archive: { path: path.relative(config.evidenceDir, archive.path), sha256: archive.sha256 },
    mode: into ? 'into' : 'scratch',
    target: redactUrl(restored.url),
    database: restored.database,
    tables: tables.map((t) => t.key),
    counts,
    operator: await readOperator(),
    host: os.hostname(),
    ...(restored.snapshot ? { snapshot: restored.snapshot } : {}),
  };
  const entry = await audit.append('restore', body, { runId });
  const { snapshot: _omitted, ...summary } = body;
  return { ...summary, entry: { seq: entry.seq, hash: entry.hash }, next: nextSteps(runId, body, restored.url, serverUrl) };
}

/**
 * Safe to paste: every command names its database in full; rows go back into the live tables
 * only through `restore --in-place`, which skips keys that exist, never by a bare \copy that
 * would stop on, or duplicate, the rows that are there.
 */
function nextSteps(runId: string, body: RestoreBody, restoredUrl: URL, liveUrl: URL): string[] {
  const tables = body.tables.flatMap((t) => ['--table', t]);
  if (body.mode === 'into') {
    return [
      `check the rows: ${psqlCommand(connectionOf(restoredUrl))}`,
      '`safe-run check` then sees the restore as recorded, not as drift',
    ];
  }
  const scratch = connectionOf(restoredUrl, body.database);
  return [
    `look at the rows: ${psqlCommand(scratch)}`,
    `put missing rows back into ${connectionOf(liveUrl).dbname} (rows whose key exists now are skipped): ${suggest('restore', runId, '--in-place', ...tables)}`,
    `drop the scratch database when done: ${dropdbCommand(scratch)}`,
  ];
}

interface RestoreJob {
  readonly config: Config;
  readonly archive: VerifiedArchive;
  readonly tables: readonly RestoreTable[];
  /** --table narrowed the backup. */
  readonly subset: boolean;
  readonly log: Logger;
}

interface Restored {
  readonly url: URL;
  readonly database: string;
  readonly counts: Record<TableKey, number>;
  readonly snapshot: Snapshot | null;
}

/**
 * restoreBackup (src/backup) does the work: every backed-up table's definition, the rows of
 * the chosen ones, schemas/types/functions the archive lacks copied from the live database,
 * foreign keys left out (a cascade closure has keys to parents outside it).
 */
async function restoreIntoScratch(job: RestoreJob, admin: Db, serverUrl: URL, name: string): Promise<Restored> {
  const major = serverMajor(await readIdentity(admin, serverUrl));
  const url = new URL(withDatabase(serverUrl, name));
  await createScratchDatabase(admin, name, serverUrl);
  try {
    return await withDatabaseAt(url, { applicationName: 'safe-run restore', maxConnections: 1 }, async (db) => {
      await restoreBackup({
        archivePath: job.archive.path,
        targetUrl: url,
        targetDb: db,
        tables: job.subset ? job.tables.map((t) => t.key) : undefined,
        pgBinDir: job.config.pgBinDir,
        serverMajor: major,
        log: job.log,
        prerequisitesFrom: serverUrl,
      });
      return { url, database: name, counts: await countTables(db, job.tables), snapshot: null };
    });
  } catch (error) {
    // We created it and it holds nothing useful; leaving it would block the next attempt.
    // withDatabaseAt has closed our pool on it already, so the drop is not blocked by it.
    await dropDatabase(admin, name).catch(() => {});
    throw error;
  }
}

const INTO_HINT =
  "Read pg_restore's message above: columns that changed since the backup, or a foreign key to a row that is not there, are the usual causes.";

/** The lock's session and three for the snapshot after the restore. */
const INTO_POOL = 4;

/**
 * Data only, into existing empty tables, under the run lock of that database (a restore
 * must not interleave with a guarded run). Afterwards a snapshot, so that `check` sees the
 * restored rows as recorded, not as drift. Sequences are left alone on purpose: setting a live
 * sequence back to its value at backup time would hand out ids that are already taken.
 */
async function restoreInto(job: RestoreJob, url: URL): Promise<Restored> {
  const { archive, tables, config } = job;
  return withDatabaseAt(url, { applicationName: 'safe-run restore', maxConnections: INTO_POOL }, (db) =>
    withClient(db, (session) =>
      withAdvisoryLock(session, job.log, async () => {
        const identity = await readIdentity(session, url);
        const pgRestore = await resolvePgTool('pg_restore', serverMajor(identity), config.pgBinDir);
        await assertEmptyTargets(session, tables);
        const toc = await listArchive(pgRestore.path, archive.path, pgChildEnv(url, 'safe-run restore'));
        const items = dataEntries(toc, await orderByForeignKeys(session, tables));
        await runPgRestore({
          bin: pgRestore.path,
          archive: archive.path,
          target: url,
          items,
          dataOnly: true,
          hint: INTO_HINT,
          log: job.log,
        });
        const counts = await countTables(session, tables);
        const { snapshot } = await takeSnapshot(db, {
          exactTables: new Set(tables.map((t) => t.key)),
          exactCountThreshold: config.exactCountThreshold,
          // All but the lock's session, so that none waits for the pool.
          connections: INTO_POOL - 1,
          url,
        });
        return { url, database: identity.name, counts, snapshot };
      }),
    ),
  );
}
