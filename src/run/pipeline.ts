import { criticalTableKeys } from '../guard/watched.js';
import { sql } from 'kysely';
import { ulid } from 'ulid';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { databaseAnchor, openAuditLog, type AuditLog } from '../audit/log.js';
import { warnSkipped } from '../audit/read.js';
import { failedBackupRecord, runBackup, skippedBackupRecord } from '../backup/backup.js';
import { backupScope, type BackupScope } from '../backup/scope.js';
import type { Config } from '../config/config.js';
import { driftBeforeRun } from '../history/before-run.js';
import { withClient, type Db, onlyRow } from '../db/connection.js';
import { readIdentity } from '../db/identity.js';
import { sealQuietly } from '../ledger/seal.js';
import { withAdvisoryLock } from '../db/lock.js';
import type { TargetHandle } from '../db/target.js';
import { parseDatabaseUrl, redactUrl } from '../db/url.js';
import { ExitCode, SafeRunError, errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import { loadScriptByName, scriptLoadOptions, type LoadedScript } from '../script/load.js';
import { takeSnapshot } from '../snapshot/take.js';
import type { BackupRecord, DatabaseIdentity, DriftFinding, RunIntentBody, RunOutcomeBody, Snapshot, TableKey } from '../records/index.js';
import { checkEnvironment } from './environment.js';
import { assertEvidenceWritable } from './preflight.js';
import { watchInterrupts, type Interrupt } from './interrupt.js';
import { readOperator, scriptGitState } from './operator.js';
import { buildRunResult } from './result.js';
import { toRunError } from './run-error.js';
import { withScriptSession } from './script-session.js';
import { runScriptTransaction } from './transaction.js';
import type { RunResult } from './types.js';
import { noProgress, type Progress } from '../progress.js';

/** The guarded run, SPEC "The guarded run" steps 1 to 12. */
export interface RunOptions {
  readonly scriptName: string;
  readonly args: readonly string[];
  readonly dryRun: boolean;
  readonly reason: string | null;
  readonly backupScope?: BackupScope;
  readonly yes?: boolean;
  /** Bars for the backup and the script's clock; a terminal's only (createProgress). */
  readonly progress?: Progress;
}

interface RunContext {
  readonly config: Config;
  readonly identity: DatabaseIdentity;
  readonly options: RunOptions;
  readonly script: LoadedScript;
  readonly url: URL;
  readonly runId: string;
  readonly db: Db;
  readonly scriptDb: Db;
  readonly session: Db;
  readonly audit: AuditLog;
  readonly interrupt: Interrupt;
  readonly log: Logger;
}

/** The guarded run on the command's target handle; the script's own session is opened here, beside it. */
export async function runGuarded(
  config: Config,
  options: RunOptions,
  target: TargetHandle,
  log: Logger,
  load = loadScriptByName,
): Promise<RunResult> {
  // Step 1: everything that can be checked without touching the database.
  const script = await load(options.scriptName, config.scriptsDirs, scriptLoadOptions(config));
  const url = parseDatabaseUrl(config.databaseUrl);
  await checkEnvironment(config, url, options);
  await assertEvidenceWritable(config.evidenceDir);
  const runId = ulid();
  const applicationName = `safe-run:${script.name}:${runId}`;
  const interrupt = watchInterrupts();
  try {
    const { db } = await target.open({ applicationName, maxConnections: 6 });
    return await withScriptSession(config, url, applicationName, (scriptDb) =>
      withClient(db, async (session) => {
        const audit = await openAuditLog({
          evidenceDir: config.evidenceDir,
          signingKeyPath: config.signingKey,
          anchor: databaseAnchor(session),
          log,
        });
        const identity = await readIdentity(session, url);
        const ctx: RunContext = { config, identity, options, script, url, runId, db, scriptDb, session, audit, interrupt, log };
        return withAdvisoryLock(session, log, () => guardedRun(ctx));
      }),
    );
  } finally {
    await script.dispose();
    interrupt.dispose();
  }
}

async function guardedRun(ctx: RunContext): Promise<RunResult> {
  const { config, script, log } = ctx;
  const timings: Record<string, number> = {};
  const started = Date.now();
  let t = started;
  const declared = Object.keys(script.touches);
  const scope = ctx.options.backupScope ?? config.backup.scope;
  const closure = await backupScope(ctx.session, declared, 'touched');
  const cascadeFrom = Object.fromEntries(closure.filter((k) => !declared.includes(k)).map((k) => [k, declared.join(', ')]));
  const critical = criticalTableKeys(script, config);
  const exactTables = new Set<TableKey>([...closure, ...critical, ...config.exactTables]);
  const backupTables = scope === 'guarded' ? await backupScope(ctx.session, declared, 'guarded', critical) : closure;
  t = Date.now();

  // Steps 4-5: the pre-snapshot, and the backup taken on the very same exported snapshot,
  // side by side. Exact counts only where they prove something: the declared tables, their
  // cascade closure and the critical tables; the rest come from the catalog and statistics.
  let written: BackupRecord | undefined;
  const { snapshot: pre } = await takeSnapshot(ctx.db, { url: ctx.url, exactTables, countConnections: 2 }, async (snapshotId) => {
    written = await backupOnSnapshot(ctx, scope, backupTables, snapshotId, timings);
  }).catch(async (error: unknown) => {
    // The counts failed beside a finished backup: no intent will ever name that archive.
    if (written) await discardBackup(config, written);
    throw error;
  });
  timings.snapshot = pre.durationMs;
  timings.snapshotAndBackup = Date.now() - t;
  const backup = written!;
  const drift = await driftBeforeRun(config, pre, ctx.session, warnSkipped(log)).catch((error: unknown) => {
    log.warn('could not compare with the previous observation', { error: errorMessage(error) });
    return [];
  });

  // What other sessions wrote before this run is sealed before the run can touch anything.
  await sealQuietly(ctx.db, ctx.audit, config.evidenceDir, ctx.identity, log);

  // Step 6: the intent, durable before the script can touch anything.
  try {
    await ctx.audit.append('run.intent', await intentBody(ctx, pre, backup), { runId: ctx.runId });
  } catch (error) {
    // No intent refers to this backup, and a full disk is the usual cause: give the space back.
    await discardBackup(config, backup);
    throw error;
  }
  if (backup.status === 'failed' || ctx.interrupt.signal) {
    return recordEarlyStop(ctx, pre, backup, drift, timings);
  }

  const finish = (status: RunResult['status'], outcome: RunOutcomeBody, post: Snapshot | null, scriptOutput: unknown): RunResult =>
    buildRunResult({
      runId: ctx.runId,
      script: script.name,
      status,
      pre,
      post,
      outcome,
      backup,
      timings: { ...timings, total: Date.now() - started },
      scriptOutput,
      rowsAffected: tx.rowsAffected,
    });

  // Steps 7-10.
  t = Date.now();
  const clock = (ctx.options.progress ?? noProgress).start(`script ${script.name}`, null);
  const tx = await runScriptTransaction({
    ...ctx,
    args: ctx.options.args,
    dryRun: ctx.options.dryRun,
    pre,
    drift,
    cascadeFrom,
    exactTables,
  }).finally(() => clock.stop());
  timings.transaction = Date.now() - t;
  Object.assign(timings, prefixed('tx.', tx.outcome.timingsMs));

  // Step 11.
  if (!tx.trx) return finish(tx.outcome.status, tx.outcome, tx.post, tx.scriptOutput);
  if (tx.outcome.status !== 'committing') {
    await tx.trx
      .rollback()
      .execute()
      .catch((error: unknown) => {
        // A dead connection has already aborted the transaction on the server; nothing is lost.
        log.warn('ROLLBACK did not go through; the server aborts the transaction with the connection', { error: errorMessage(error) });
      });
    return finish(tx.outcome.status, tx.outcome, null, tx.scriptOutput);
  }
  try {
    await tx.trx.commit().execute();
  } catch (error) {
    const runError = toRunError(error);
    await ctx.audit.append('run.commit-failed', { error: runError, xid: tx.outcome.xid }, { runId: ctx.runId });
    return finish('commit-failed', { ...tx.outcome, error: runError }, null, tx.scriptOutput);
  }
  t = Date.now();
  const { rows } = await sql<{ lsn: string }>`select pg_catalog.pg_current_wal_insert_lsn()::text as lsn`.execute(ctx.session);
  // The guarded tables' counts are the transaction's own, measured just before COMMIT;
  // everything else is the catalog and statistics as they are now.
  // (A table in exactTables the script's role could not count is counted here.)
  const { snapshot: post } = await takeSnapshot(ctx.db, {
    url: ctx.url,
    exactTables,
    knownCounts: tx.outcome.inTxCounts,
    countConnections: 0,
  });
  await appendPost(ctx, post, onlyRow(rows).lsn, tx.outcome.xid!);
  // The run's own ledger statements are visible from here on.
  await sealQuietly(ctx.db, ctx.audit, config.evidenceDir, ctx.identity, log);
  timings.post = Date.now() - t;
  return finish('committed', tx.outcome, post, tx.scriptOutput);
}

/** Step 5 on the pre-snapshot's exported snapshot; a failure is recorded, not thrown: the intent says why. */
async function backupOnSnapshot(
  ctx: RunContext,
  scope: BackupScope,
  closure: readonly TableKey[],
  snapshotId: string,
  timings: Record<string, number>,
): Promise<BackupRecord> {
  // A dry run commits nothing, so there is nothing it could ever be restored to before.
  if (ctx.options.dryRun) return skippedBackupRecord(scope);
  const started = Date.now();
  try {
    return await runBackup({
      db: ctx.db,
      url: ctx.url,
      snapshotId,
      scope,
      tables: scope === 'full' ? [] : closure,
      evidenceDir: ctx.config.evidenceDir,
      runId: ctx.runId,
      compress: ctx.config.backup.compress,
      jobs: ctx.config.backup.jobs,
      lockWaitTimeoutMs: ctx.config.backup.lockWaitTimeoutMs,
      pgBinDir: ctx.config.pgBinDir,
      serverMajor: Math.floor(ctx.identity.serverVersionNum / 10000),
      log: ctx.log,
      signal: ctx.interrupt.abortSignal,
      progress: ctx.options.progress,
    });
  } catch (error) {
    return failedBackupRecord(scope, closure, error);
  } finally {
    timings.backup = Date.now() - started;
  }
}

async function discardBackup(config: Config, backup: BackupRecord): Promise<void> {
  if (backup.path) await rm(path.join(config.evidenceDir, backup.path), { recursive: true, force: true }).catch(() => {});
}

async function appendPost(ctx: RunContext, post: Snapshot, commitLsn: string, xid: string): Promise<void> {
  try {
    await ctx.audit.append('run.post', { status: 'committed', snapshot: post, commitLsn, xid }, { runId: ctx.runId });
  } catch (error) {
    // The data is committed; only the confirmation is missing. txid_status(xid) still settles it.
    throw new SafeRunError(
      `Run ${ctx.runId} COMMITTED, but its run.post entry could not be written: ${errorMessage(error)}`,
      ExitCode.auditFailed,
      '`safe-run check` and `safe-run show` resolve the outcome from the transaction id; fix the evidence directory.',
      { cause: error },
    );
  }
}

/** Backup failed or a signal arrived before the script ran: record why, run nothing. */
async function recordEarlyStop(
  ctx: RunContext,
  pre: Snapshot,
  backup: BackupRecord,
  drift: readonly DriftFinding[],
  timings: Record<string, number>,
): Promise<RunResult> {
  const interrupted = ctx.interrupt.signal !== null;
  const outcome = {
    status: interrupted ? ('interrupted' as const) : ('backup-failed' as const),
    changes: {},
    inTxCounts: {},
    violations: [],
    error: { message: interrupted ? `interrupted by ${ctx.interrupt.signal} before the script ran` : (backup.error ?? 'backup failed') },
    timingsMs: timings,
    xid: null,
    walLsnStart: null,
    sequencesUsed: [],
    drift,
  };
  await ctx.audit.append('run.outcome', outcome, { runId: ctx.runId });
  return buildRunResult({
    runId: ctx.runId,
    script: ctx.script.name,
    status: outcome.status,
    pre,
    post: null,
    outcome,
    backup,
    timings,
    scriptOutput: undefined,
  });
}

async function intentBody(ctx: RunContext, pre: Snapshot, backup: BackupRecord): Promise<RunIntentBody> {
  const { script } = ctx;
  return {
    script: {
      name: script.name,
      kind: script.kind,
      path: script.path,
      sha256: script.sha256,
      git: await scriptGitState(script.path),
      touches: script.touches,
      limits: script.limits,
      critical: script.critical,
      ddl: script.ddl,
    },
    args: ctx.options.args,
    dryRun: ctx.options.dryRun,
    operator: await readOperator(),
    host: os.hostname(),
    reason: ctx.options.reason,
    url: redactUrl(ctx.url),
    snapshot: pre,
    backup,
  };
}

function prefixed(prefix: string, record: Readonly<Record<string, number>>): Record<string, number> {
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [`${prefix}${k}`, v]));
}
