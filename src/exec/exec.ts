import { setTimeout as sleep } from 'node:timers/promises';
import os from 'node:os';
import { ulid } from 'ulid';
import { openAuditLog, type AuditLog } from '../audit/log.js';
import { failedBackupRecord, runBackup } from '../backup/backup.js';
import type { Config } from '../config/config.js';
import { databaseAnchor } from '../audit/anchor.js';
import { withClient, type Db } from '../db/connection.js';
import { readIdentity, serverMajor } from '../db/identity.js';
import { withAdvisoryLock } from '../db/lock.js';
import type { TargetHandle } from '../db/target.js';
import { parseDatabaseUrl, redactUrl } from '../db/url.js';
import { errorMessage, usageError } from '../errors.js';
import type { Logger } from '../logger.js';
import { checkEnvironment } from '../run/environment.js';
import { watchInterrupts, type Interrupt } from '../run/interrupt.js';
import { readOperator } from '../run/operator.js';
import type { BackupRecord, DriftFinding, ExecIntentBody, ExecOutcomeBody, ExecStatus, Snapshot } from '../records/index.js';
import { takeSnapshot } from '../snapshot/take.js';
import type { SnapshotOptions } from '../snapshot/types.js';
import { execExitCode, execFindings, tableChanges } from './changes.js';
import { runChild, type ChildOutcome } from './child.js';
import { redactArgv } from './redact.js';
import type { ExecOptions, ExecResult } from './types.js';
import { resolveCommand } from './which.js';

/**
 * Other backends' counters reach shared statistics up to about a second late (SPEC "Facts
 * measured"); the wrapped command's own sessions have just ended when it exits.
 */
const STATS_SETTLE_MS = 1_100;

interface ExecContext {
  readonly config: Config;
  readonly options: ExecOptions;
  readonly url: URL;
  readonly db: Db;
  readonly runId: string;
  readonly program: string;
  readonly audit: AuditLog;
  readonly interrupt: Interrupt;
  readonly log: Logger;
}

/** The lock's session and four for the snapshots, which count side by side (exactCountThreshold). */
const EXEC_POOL = 5;

/**
 * `safe-run exec -- <command...>`: snapshots, a backup and signed entries around a command that
 * has no transaction. The target is opened only once the command is known to exist.
 */
export async function execWrapped(config: Config, options: ExecOptions, target: TargetHandle, log: Logger): Promise<ExecResult> {
  const [command] = options.command;
  if (!command) throw usageError('No command given.', 'Put it after `--`: safe-run exec -- npm run db:reset');
  const program = resolveCommand(command, process.cwd());
  const url = parseDatabaseUrl(config.databaseUrl);
  await checkEnvironment(config, url, { reason: options.reason, yes: options.yes, dryRun: false });
  const runId = ulid();
  // Named after the run, so `log` and `check` see an exec in progress as live (history/txid.ts).
  // One session holds the lock while the command runs. The other connections sit idle in the
  // pool then: a reset that drops the database WITH (FORCE) ends them, and the pool replaces
  // them for the post-snapshot and the anchor (a plain DROP is blocked by the lock session anyway).
  const { db } = await target.open({ applicationName: `safe-run:exec:${runId}`, maxConnections: EXEC_POOL });
  const interrupt = watchInterrupts();
  try {
    const audit = await openAuditLog({
      evidenceDir: config.evidenceDir,
      signingKeyPath: config.signingKey,
      anchor: databaseAnchor(db),
      log,
    });
    const ctx: ExecContext = { config, options, url, db, runId, program, audit, interrupt, log };
    return await withClient(db, async (session) => {
      const major = serverMajor(await readIdentity(session, url));
      return withAdvisoryLock(session, log, () => wrap(ctx, major));
    });
  } finally {
    interrupt.dispose();
  }
}

async function wrap(ctx: ExecContext, major: number): Promise<ExecResult> {
  const { config, options, runId, log } = ctx;
  const scope = options.backupScope ?? (config.backup.scope === 'none' ? 'none' : 'full');
  const { snapshot: pre, held } = await snapshotOf(ctx, (snapshotId, db) =>
    runBackup({
      db,
      url: ctx.url,
      snapshotId,
      scope,
      tables: [],
      evidenceDir: config.evidenceDir,
      runId,
      compress: config.backup.compress,
      jobs: config.backup.jobs,
      lockWaitTimeoutMs: config.backup.lockWaitTimeoutMs,
      pgBinDir: config.pgBinDir,
      serverMajor: major,
      log,
      signal: ctx.interrupt.abortSignal,
    }).catch((error: unknown) => failedBackupRecord(scope, [], error)),
  );
  const backup = held!;
  const intent: ExecIntentBody = {
    command: redactArgv(options.command),
    label: options.label,
    cwd: process.cwd(),
    operator: await readOperator(),
    host: os.hostname(),
    reason: options.reason,
    url: redactUrl(ctx.url),
    snapshot: pre,
    backup,
  };
  await ctx.audit.append('exec.intent', intent, { runId });

  if (backup.status === 'failed' || ctx.interrupt.signal) {
    const status: ExecStatus = backup.status === 'failed' ? 'backup-failed' : 'interrupted';
    const error =
      status === 'backup-failed'
        ? `backup failed, the command was not run: ${backup.error ?? ''}`
        : `interrupted by ${ctx.interrupt.signal} before the command ran`;
    return finish(ctx, pre, backup, {
      status,
      exitCode: null,
      signal: null,
      durationMs: 0,
      error,
      snapshot: null,
      changes: {},
      findings: [],
    });
  }

  log.info('running the wrapped command', { runId, command: intent.command });
  const child = await runChild(ctx.program, options.command.slice(1), ctx.interrupt, options.json === true);
  await sleep(STATS_SETTLE_MS);
  const post = await snapshotOf(ctx).then(
    (taken) => ({ snapshot: taken.snapshot, error: null }),
    (error: unknown) => ({ snapshot: null, error: errorMessage(error) }),
  );
  const findings = post.snapshot ? execFindings(pre, post.snapshot, config) : unreadableAfter(pre, config, post.error!);
  return finish(ctx, pre, backup, {
    status: ctx.interrupt.signal ? 'interrupted' : child.exitCode === 0 ? 'completed' : 'failed',
    exitCode: child.exitCode,
    signal: child.signal,
    durationMs: child.durationMs,
    error: childError(child, post.error),
    snapshot: post.snapshot,
    changes: post.snapshot ? tableChanges(pre, post.snapshot) : {},
    findings,
  });
}

async function snapshotOf<T>(
  ctx: ExecContext,
  whileOpen?: (snapshotId: string, db: Db) => Promise<T>,
): Promise<{ snapshot: Snapshot; held: T | undefined }> {
  const { db } = ctx;
  const options: SnapshotOptions = {
    exactTables: new Set(Object.keys(ctx.config.criticalTables)),
    exactCountThreshold: ctx.config.exactCountThreshold,
    // All but the lock's session, so that none waits for the pool.
    connections: EXEC_POOL - 1,
    url: ctx.url,
  };
  return takeSnapshot(db, options, whileOpen && ((snapshotId) => whileOpen(snapshotId, db)));
}

async function finish(ctx: ExecContext, pre: Snapshot, backup: BackupRecord, outcome: ExecOutcomeBody): Promise<ExecResult> {
  await ctx.audit.append('exec.outcome', outcome, { runId: ctx.runId });
  const counts = (s: Snapshot | null) => Object.fromEntries(Object.entries(s?.tables ?? {}).map(([k, t]) => [k, t.rows]));
  return {
    runId: ctx.runId,
    label: ctx.options.label,
    command: redactArgv(ctx.options.command),
    status: outcome.status,
    exitCode: execExitCode(outcome.status, outcome.exitCode, outcome.findings),
    commandExitCode: outcome.exitCode,
    signal: outcome.signal,
    durationMs: outcome.durationMs,
    counts: { pre: counts(pre), post: counts(outcome.snapshot) },
    changes: outcome.changes,
    findings: outcome.findings,
    backup,
    error: outcome.error,
  };
}

/** Unreadable afterwards (dropped and not recreated?): a critical table that had rows cannot be vouched for. */
function unreadableAfter(pre: Snapshot, config: Config, error: string): DriftFinding[] {
  return Object.keys(config.criticalTables)
    .filter((key) => (pre.tables[key]?.rows ?? 0) > 0)
    .map((key) => ({
      kind: 'critical-empty',
      table: key,
      before: pre.tables[key]!.rows,
      after: null,
      detail: `Critical table ${key} could not be read after the command (${error}); treat it as lost until checked.`,
    }));
}

function childError(child: ChildOutcome, postError: string | null): string | null {
  const parts = [
    child.error,
    child.signal ? `the command was killed by ${child.signal}` : null,
    postError ? `post-snapshot failed: ${postError}` : null,
  ];
  return parts.filter(Boolean).join('; ') || null;
}
