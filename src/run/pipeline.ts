import { criticalTableKeys } from '../guard/watched.js';
import { sql } from 'kysely';
import { ulid } from 'ulid';
import os from 'node:os';
import { databaseAnchor, openAuditLog, type AuditLog } from '../audit/log.js';
import { anchorTableComplete } from '../audit/anchor.js';
import { warnSkipped } from '../audit/read.js';
import { dryRunMode, type BackupMode } from '../backup/mode.js';
import { pgDumpMode } from '../backup/pg-dump-mode.js';
import { probePgToolsEarly } from '../backup/pg-tools.js';
import { pgBackRestMode } from '../backup/pgbackrest-mode.js';
import { closureOf, readScopeGraph, type BackupScope, type ScopeGraph } from '../backup/scope.js';
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
import { settledOr, takeSnapshot } from '../snapshot/take.js';
import { prepareBaseline, type PreparedBaseline } from '../guard/baseline.js';
import { warmParser } from '../guard/pg-parser.js';
import type {
  BackupRecord,
  DatabaseIdentity,
  DriftFinding,
  Operator,
  PitrPostRecord,
  RunIntentBody,
  RunOutcomeBody,
  ScriptRecord,
  Snapshot,
  TableKey,
} from '../records/index.js';
import { hintMatches, readDeclarationHint, writeDeclarationHint, type DeclarationHint } from './declaration-hint.js';
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
import { bothSettled } from '../settled.js';

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

/**
 * The runner's connections: the lock's session, held for the whole run, and two for the
 * snapshots (the exporting one, and one reading the fingerprints beside the counts), which
 * between the snapshots read the scope graph and write the seal. Every connection is a server
 * process started for this run; three instead of six took about 180 ms of the server's CPU
 * off a guarded cleanup (BENCHMARKS.md, "fifteenth stop"). The script's own session and
 * pg_dump's are apart from these.
 */
const RUN_POOL = 3;
/** What a snapshot may hold of RUN_POOL: all but the lock's session, so that none waits for the pool. */
export const SNAPSHOT_CONNECTIONS = RUN_POOL - 1;

/** What a run holds before its script's declarations are known: all of it is the script's business but none of it needs them. */
interface EarlyContext extends Start {
  readonly identity: DatabaseIdentity;
  readonly url: URL;
  readonly db: Db;
  readonly scriptDb: Db;
  readonly session: Db;
  readonly audit: AuditLog;
  /** The tables and what a delete in each reaches, read on the pool while the log opens and the lock is taken. */
  readonly graph: Promise<ScopeGraph>;
}

interface RunContext extends EarlyContext {
  readonly script: LoadedScript;
}

interface RunFacts {
  readonly operator: Promise<Operator>;
  readonly git: Promise<ScriptRecord['git']>;
}

/**
 * The guarded run on the command's target handle; the script's own session is opened here, beside it.
 *
 * Starting the script's child is the longest step before the script can run (a Node start-up,
 * the transpiler, the module's import, then its declarations). Nothing else waits for it
 * unless it needs the declarations: the checks, both connections, the log and its key, the
 * lock, the table shapes of the baseline and the pre-snapshot's catalog all run meanwhile. A
 * failure is still reported in the pipeline's order (the load's first, see `inPipelineOrder`),
 * and nothing is left behind: the child is disposed of once it has started, the connections
 * are closed by their scopes.
 */
export async function runGuarded(
  config: Config,
  options: RunOptions,
  target: TargetHandle,
  log: Logger,
  load = loadScriptByName,
): Promise<RunResult> {
  // Step 1: everything that can be checked without touching the database.
  const timings: Record<string, number> = {};
  // A .sql script's header is read now and its statements judged while pg_dump runs (judgeWhileDumping).
  const loadOptions = { ...scriptLoadOptions(config), judgeLater: true };
  const loading = timed(timings, 'load', () => load(options.scriptName, config.scriptsDirs, loadOptions));
  loading.catch(() => {}); // awaited where the declarations are needed, and below
  const hint = readDeclarationHint(config.evidenceDir, options.scriptName);
  const remembering = loading.then(
    (script) => rememberDeclarations(config, options.scriptName, hint, script, log),
    () => {},
  );
  const held: { facts?: RunFacts } = {};
  const facts = (): RunFacts => (held.facts ??= startFacts(loading));
  const runId = ulid();
  const interrupt = watchInterrupts();
  try {
    return await connectAndRun({ config, options, target, log, loading, hint, facts, runId, interrupt, timings });
  } catch (error) {
    throw await inPipelineOrder(error, loaded(loading), interrupt);
  } finally {
    await loading.then(
      (script) => script.dispose(),
      () => {},
    );
    // A run that stopped before its intent leaves no git process behind either.
    if (held.facts) await Promise.allSettled([held.facts.operator, held.facts.git]);
    await remembering;
    interrupt.dispose();
  }
}

/**
 * The script loaded and, for a .sql script, its statements judged: what a load failure was
 * before the statements were judged apart (a refusal is still reported first, and is still
 * what a confirmation prompt waits for).
 */
function loaded(loading: Promise<LoadedScript>): Promise<LoadedScript> {
  return loading.then(async (script) => {
    await script.judge?.();
    return script;
  });
}

/**
 * Work on this process's main thread that the script needs only once the intent is written,
 * done while pg_dump runs rather than on the way to it: a .sql script's statements are parsed
 * and judged (40-60 ms, most of it compiling the parser's WebAssembly), and for a TypeScript
 * script the parser is warmed, so that its first statement does not pay that inside its
 * transaction.
 */
async function judgeWhileDumping(loading: Promise<LoadedScript>): Promise<void> {
  const script = await loaded(loading);
  if (!script.judge) await warmParser().catch(() => {});
}

/**
 * Keeps a TypeScript script's declarations for its next run (declaration-hint.ts), once its
 * child has read them, whatever the run does next. SQL and built-in scripts need none: their
 * declarations are read in this process. Rewritten only when they changed.
 */
async function rememberDeclarations(
  config: Config,
  scriptName: string,
  hint: Promise<DeclarationHint | null>,
  script: LoadedScript,
  log: Logger,
): Promise<void> {
  if (script.kind !== 'ts' || hintMatches(await hint, script)) return;
  const notKept = await writeDeclarationHint(config.evidenceDir, scriptName, script);
  if (notKept) log.debug('the declarations were not kept for the next run; it will wait for the script to load', { error: notKept });
}

/**
 * The git facts of the intent: the operator's identity, and the commit of the script's file.
 * Read once pg_dump runs (guardedSteps), or when the intent is written, whichever comes first:
 * starting two git processes blocks this process for tens of milliseconds, which the steps
 * before the backup would wait for, and pg_dump leaves it idle.
 */
function startFacts(loading: Promise<LoadedScript>): RunFacts {
  const operator = readOperator();
  const git = loading.then((script) => scriptGitState(script.path));
  operator.catch(() => {});
  git.catch(() => {});
  return { operator, git };
}

/**
 * Which failure a run reports when steps ran side by side: the one the pipeline meets first.
 * The load came first when the steps ran in turn, so its error (an unloadable script, exit 2)
 * still wins over a connection, key or lock failure met while the child was starting. A
 * signal during the load (a terminal's Ctrl-C reaches the child too) stopped a run that had
 * recorded nothing yet.
 */
async function inPipelineOrder(error: unknown, loading: Promise<LoadedScript>, interrupt: Interrupt): Promise<unknown> {
  const loadError = await loading.then(
    () => null,
    (e: unknown) => e,
  );
  if (loadError === null) return error;
  if (interrupt.signal) {
    return new SafeRunError(
      `Interrupted by ${interrupt.signal} while the script was loading: nothing was run or recorded.`,
      ExitCode.interrupted,
    );
  }
  return loadError;
}

/** What a run starts with, before it connects. */
interface Start {
  readonly config: Config;
  readonly options: RunOptions;
  readonly target: TargetHandle;
  readonly log: Logger;
  /** The script's child starting and describing it; awaited where the declarations are needed. */
  readonly loading: Promise<LoadedScript>;
  /** What the script declared on its last run (declaration-hint.ts), read while the child starts. */
  readonly hint: Promise<DeclarationHint | null>;
  /** The git facts, started on first call (startFacts) and awaited by the intent. */
  readonly facts: () => RunFacts;
  readonly runId: string;
  readonly interrupt: Interrupt;
  /** What it took to get here (load, connect, open the log), recorded with the run's own timings. */
  readonly timings: Record<string, number>;
}

/** Steps 1 to 3 while the script loads: the checks, the connections, the log, the identity and the lock. */
async function connectAndRun(start: Start): Promise<RunResult> {
  const { config, options, target, log, timings } = start;
  const url = parseDatabaseUrl(config.databaseUrl);
  // A confirmation prompt waits for the script: nobody should confirm a run that cannot load.
  await checkEnvironment(config, url, options, () => loaded(start.loading));
  // The evidence probe syncs a file to disk: the connections open meanwhile, and nothing is
  // read, locked or written through them until it has passed. Its failure (exit 4) is still
  // the one reported when a connection fails too, as when the probe came first.
  const probing = assertEvidenceWritable(config.evidenceDir);
  probing.catch(() => {}); // awaited before the first use of a connection, and on every failure
  // The name the script is called by: its declarations (and the name they give) are not read yet.
  const applicationName = `safe-run:${options.scriptName}:${start.runId}`;
  const connecting = Date.now();
  // The runner's pool and the script's session connect side by side.
  const opening = target.open({ applicationName, maxConnections: RUN_POOL });
  opening.catch(() => {}); // awaited below; withTarget closes it if the script's session fails first
  if (dumpsBackup(config, options)) probePgToolsEarly(config.pgBinDir);
  try {
    return await withScriptSession(config, url, applicationName, async (scriptDb) =>
      withClient((await opening).db, async (session) => {
        timings.connect = Date.now() - connecting;
        await probing;
        const { db } = await opening;
        // A read of the catalog, which needs neither the log nor the lock: it runs beside them, on
        // a connection of its own. Awaited by the steps, and settled before the pool can close.
        // Like any read outside the exported snapshot it can miss DDL committed meanwhile; a
        // cascade it misses shows as an undeclared change, which the guard refuses.
        const graph = readScopeGraph(db);
        graph.catch(() => {});
        try {
          // The identity is read beside the log's opening; the log's error is the one reported when both fail.
          const [audit, identity] = await bothSettled(
            timed(timings, 'openLog', () =>
              openAuditLog({
                evidenceDir: config.evidenceDir,
                signingKeyPath: config.signingKey,
                anchor: databaseAnchor(session),
                log,
              }),
            ),
            readIdentity(session, url),
          );
          const ctx: EarlyContext = { ...start, identity, url, db, scriptDb, session, audit, graph };
          return await withAdvisoryLock(session, log, () => guardedRun(ctx));
        } finally {
          await graph.catch(() => {});
        }
      }),
    );
  } catch (error) {
    await probing;
    throw error;
  }
}

/**
 * The prepared half of the guard's baseline, its table shapes (guard/baseline.ts), read on the
 * script's own session. Started as soon as the lock is held, it runs beside the counts and the
 * backup (the scope graph was read before the lock), which are reads too, so none of them waits
 * for it. Only when the run's own first append will create or widen the anchor table (a
 * database's first run) does it wait until after the intent: that DDL is the runner's, not the
 * script's.
 */
interface Preparation {
  /** Started already: the snapshot step awaits it with the backup. */
  readonly early: boolean;
  /** Starts it on first call; later calls get the same reading. */
  readonly get: () => Promise<PreparedBaseline>;
}

async function guardedRun(ctx: EarlyContext): Promise<RunResult> {
  let preparing: Promise<PreparedBaseline> | null = null;
  const get = (): Promise<PreparedBaseline> => {
    preparing ??= timed(ctx.timings, 'prepare', () => prepareBaseline(ctx.scriptDb));
    preparing.catch(() => {}); // its failure is the run's, where a step awaits it
    return preparing;
  };
  const early = await anchorTableComplete(ctx.session);
  if (early) void get();
  try {
    return await guardedSteps(ctx, { early, get });
  } finally {
    // Never leave the script's session busy behind a run that stopped early.
    await (preparing as Promise<PreparedBaseline> | null)?.catch(() => {});
  }
}

/** What a script's declarations decide: the tables counted exactly, the backup's scope, the cascade's origins. */
interface Scope {
  readonly cascadeFrom: Readonly<Record<TableKey, TableKey>>;
  readonly exactTables: ReadonlySet<TableKey>;
  readonly backupTables: readonly TableKey[];
}

/** The scope of the script's own declarations, as its child read them. */
interface RunPlan extends Scope {
  readonly script: LoadedScript;
  /** When the declarations arrived (Date.now()): the steps waiting on them are timed from here. */
  readonly at: number;
}

function scopeOf(declarations: Pick<LoadedScript, 'touches' | 'critical'>, config: Config, graph: ScopeGraph, scope: BackupScope): Scope {
  const declared = Object.keys(declarations.touches);
  const closure = closureOf(graph, declared);
  const cascadeFrom = Object.fromEntries(closure.filter((k) => !declared.includes(k)).map((k) => [k, declared.join(', ')]));
  const critical = criticalTableKeys(declarations, config);
  const exactTables = new Set<TableKey>([...closure, ...critical, ...config.exactTables]);
  const backupTables = scope === 'guarded' ? closureOf(graph, [...declared, ...critical]) : closure;
  return { cascadeFrom, exactTables, backupTables };
}

async function guardedSteps(early: EarlyContext, preparation: Preparation): Promise<RunResult> {
  const { config, log, timings } = early;
  const started = Date.now();
  const scope = early.options.backupScope ?? config.backup.scope;
  const [graph, hint] = await Promise.all([early.graph, early.hint]);
  const planning = early.loading.then((script): RunPlan => ({ script, ...scopeOf(script, config, graph, scope), at: Date.now() }));
  // The declarations of the script's last run, to start on while its child starts (null: none kept).
  const hinted = hint ? scopeOf(hint, config, graph, scope) : null;
  const counted = planning.then((plan) => plan.exactTables);
  // Awaited by the snapshot's counts and the backup; a failed load is reported from there.
  planning.catch(() => {});
  counted.catch(() => {});
  let t = Date.now();

  // Steps 4-5: the pre-snapshot, and the backup taken on the very same exported snapshot,
  // side by side. Exact counts only where they prove something: the declared tables, their
  // cascade closure and the critical tables; the rest come from the catalog and statistics.
  // The snapshot is exported and its catalog read while the script may still be loading;
  // its counts and the backup start on the declarations of the script's last run when there
  // is such a hint, and otherwise wait for the declarations that name their tables.
  // pgbackrest mode dumps nothing: it checks the archive before and records positions after.
  const backupMode = chooseBackupMode(early, scope, graph, planning, hinted);
  await backupMode.beforeSnapshot();
  const beforeSnapshotMs = Date.now() - t;
  // What needs only the pre-snapshot starts as soon as its reads are done, while pg_dump runs
  // on, and so do the git facts of the intent (startFacts).
  const afterRead: { work?: Promise<readonly DriftFinding[]>; judged?: Promise<void> } = {};
  const snapshotOptions = {
    url: early.url,
    exactTables: counted,
    exactTablesGuess: hinted?.exactTables,
    connections: SNAPSHOT_CONNECTIONS,
    onRead: (pre: Snapshot) => {
      early.facts();
      afterRead.work = beforeIntent(early, pre);
      afterRead.judged = judgeWhileDumping(early.loading);
      afterRead.judged.catch(() => {}); // a refusal is awaited before the intent
    },
  };
  const [taken, baseline] = await Promise.allSettled([
    takeSnapshot(early.db, snapshotOptions, (snapshotId) => backupMode.duringSnapshot(snapshotId)),
    preparation.early ? preparation.get() : null,
  ]);
  if (taken.status === 'rejected' || baseline.status === 'rejected') {
    // The counts or the baseline failed beside a finished backup: no intent will ever name that archive.
    await backupMode.discard();
    await Promise.allSettled([afterRead.work, afterRead.judged]);
    throw taken.status === 'rejected' ? taken.reason : (baseline as PromiseRejectedResult).reason;
  }
  const { script, cascadeFrom, exactTables, at: planned } = await planning;
  const ctx: RunContext = { ...early, script };
  const pre = taken.value.snapshot;
  timings.snapshot = pre.durationMs;
  const recording = Date.now();
  const backup = await backupMode.record(pre);
  timings.backup = (timings.backup ?? 0) + beforeSnapshotMs + (Date.now() - recording);
  // From when both the lock was held and the declarations were known.
  timings.snapshotAndBackup = Date.now() - Math.max(planned, t);
  const drift = await (afterRead.work ?? beforeIntent(early, pre));

  // Step 6: the intent, durable before the script can touch anything.
  try {
    // A refused statement stops the run here, with no intent: nothing names its backup.
    await (afterRead.judged ?? judgeWhileDumping(early.loading));
    await ctx.audit.append('run.intent', await intentBody(ctx, pre, backup), { runId: ctx.runId });
  } catch (error) {
    // No intent refers to this backup (a refused statement, or an entry that could not be
    // written: a full disk, usually): give the space back.
    await backupMode.discard();
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
  const prepared = await preparation.get();
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
    prepared,
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
    await flushOwnCounters(ctx);
    return finish(tx.outcome.status, tx.outcome, null, tx.scriptOutput);
  }
  try {
    await tx.trx.commit().execute();
  } catch (error) {
    const runError = toRunError(error);
    await ctx.audit.append('run.commit-failed', { error: runError, xid: tx.outcome.xid }, { runId: ctx.runId });
    return finish('commit-failed', { ...tx.outcome, error: runError }, null, tx.scriptOutput);
  }
  await flushOwnCounters(ctx);
  t = Date.now();
  const { rows } = await sql<{ lsn: string }>`select pg_catalog.pg_current_wal_insert_lsn()::text as lsn`.execute(ctx.session);
  // The guarded tables' counts are the transaction's own, measured just before COMMIT;
  // everything else is the catalog and statistics as they are now.
  // (A table in exactTables the script's role could not count is counted here.)
  const { snapshot: post } = await takeSnapshot(ctx.db, {
    url: ctx.url,
    exactTables,
    knownCounts: tx.outcome.inTxCounts,
    connections: SNAPSHOT_CONNECTIONS,
  });
  timings.post = Date.now() - t;
  t = Date.now();
  const commitLsn = onlyRow(rows).lsn;
  const pitr = await backupMode.afterCommit(commitLsn);
  if (pitr) timings.archive = Date.now() - t;
  await appendPost(ctx, post, commitLsn, tx.outcome.xid!, pitr);
  // The run's own ledger statements are visible from here on.
  await sealQuietly(ctx.db, ctx.audit, config.evidenceDir, ctx.identity, log);
  if (pitr && !pitr.archived) throw archiveNotConfirmed(ctx.runId, pitr);
  return finish('committed', tx.outcome, post, tx.scriptOutput);
}

/**
 * The script's session publishes its counters at most once a second (10 s when idle), so a
 * post-snapshot read right after COMMIT would record counters without the run's own writes,
 * and the next observation would see them as a change outside any run. Forcing the flush
 * (PostgreSQL 15+) happens before the server answers, so the post-snapshot reads them.
 */
async function flushOwnCounters(ctx: RunContext): Promise<void> {
  try {
    await sql`select pg_catalog.pg_stat_force_next_flush()`.execute(ctx.scriptDb);
  } catch (error) {
    // Older servers lack the function, and a role may not be granted it: blame then settles late counters.
    ctx.log.debug('pg_stat_force_next_flush() did not run', { error: errorMessage(error) });
  }
}

/**
 * Drift since the previous observation of this database, and the seal of what other sessions
 * wrote before this run: both before the intent, so before the run can touch anything. Neither
 * fails the run; a failure is a warning.
 */
async function beforeIntent(early: EarlyContext, pre: Snapshot): Promise<readonly DriftFinding[]> {
  const { config, log } = early;
  const [drift] = await Promise.all([
    driftBeforeRun(config, pre, early.session, warnSkipped(log)).catch((error: unknown) => {
      log.warn('could not compare with the previous observation', { error: errorMessage(error) });
      return [];
    }),
    sealQuietly(early.db, early.audit, config.evidenceDir, early.identity, log),
  ]);
  return drift;
}

/** Whether the run will start pg_dump (chooseBackupMode): not for a dry run, pgBackRest mode or scope none. */
function dumpsBackup(config: Config, options: RunOptions): boolean {
  return !options.dryRun && config.backup.mode !== 'pgbackrest' && (options.backupScope ?? config.backup.scope) !== 'none';
}

/**
 * backup.mode, chosen once per run: pg_dump of the scope (step 5), or pgBackRest's archive.
 * pg_dump's 'touched' and 'guarded' scopes come from the script's declarations, which may
 * still be loading (scopedDumpMode); 'full' and 'none' do not depend on them.
 */
function chooseBackupMode(
  ctx: EarlyContext,
  scope: BackupScope,
  graph: ScopeGraph,
  planning: Promise<RunPlan>,
  hinted: Scope | null,
): BackupMode {
  const { config } = ctx;
  if (ctx.options.dryRun) return dryRunMode(scope, ctx.log);
  if (config.backup.mode === 'pgbackrest' && config.backup.pgbackrest) {
    return pgBackRestMode({ config: config.backup.pgbackrest, session: ctx.session, identity: ctx.identity, url: ctx.url, log: ctx.log });
  }
  const dumpOf = (tables: readonly TableKey[], signal: AbortSignal): BackupMode =>
    pgDumpMode({
      db: ctx.db,
      url: ctx.url,
      scope,
      tables,
      known: graph.existing,
      evidenceDir: config.evidenceDir,
      runId: ctx.runId,
      compress: config.backup.compress,
      jobs: config.backup.jobs,
      lockWaitTimeoutMs: config.backup.lockWaitTimeoutMs,
      pgBinDir: config.pgBinDir,
      serverMajor: Math.floor(ctx.identity.serverVersionNum / 10000),
      log: ctx.log,
      signal,
      progress: ctx.options.progress,
    });
  if (scope === 'full' || scope === 'none') return timedDuring(ctx.timings, dumpOf([], ctx.interrupt.abortSignal));
  return scopedDumpMode(ctx, dumpOf, planning, hinted);
}

/** Adds the time `duringSnapshot` took to timings.backup. */
function timedDuring(timings: Record<string, number>, mode: BackupMode): BackupMode {
  return {
    ...mode,
    duringSnapshot: async (snapshotId) => {
      const started = Date.now();
      try {
        await mode.duringSnapshot(snapshotId);
      } finally {
        timings.backup = (timings.backup ?? 0) + (Date.now() - started);
      }
    },
  };
}

/**
 * pg_dump of the tables the script's declarations put in scope. With a hint (the scope the
 * script declared on its last run) the dump starts on the exported snapshot at once, while the
 * child is still starting; when the child's declarations arrive, a dump of other tables than
 * they put in scope is stopped, removed, and taken again with the right scope on the same
 * snapshot, which stays exported until this returns (snapshot/take.ts). So the archive the
 * intent names always holds exactly the scope of the declarations that run: a stale or edited
 * hint costs a second dump, never another record. The tables must be the same, not merely
 * covered: the record lists what was dumped, and `restore` offers what that list holds, so a
 * larger dump would change what a later restore of this run does.
 */
function scopedDumpMode(
  ctx: EarlyContext,
  dumpOf: (tables: readonly TableKey[], signal: AbortSignal) => BackupMode,
  planning: Promise<RunPlan>,
  hinted: Scope | null,
): BackupMode {
  let current: BackupMode | null = null;
  const dump = (tables: readonly TableKey[], snapshotId: string, signal = ctx.interrupt.abortSignal): Promise<void> => {
    current = timedDuring(ctx.timings, dumpOf(tables, signal));
    return current.duringSnapshot(snapshotId);
  };
  return {
    beforeSnapshot: async () => {},
    duringSnapshot: async (snapshotId) => {
      // Declarations that arrived before the snapshot was exported need no hint.
      const exported = Date.now();
      const first = hinted ? await settledOr(planning, hinted) : await planning;
      // How long the exported snapshot sat waiting for the script's declarations before its backup could start.
      ctx.timings.backupWaited = Date.now() - exported;
      if (first !== hinted) return dump(first.backupTables, snapshotId);
      const stop = new AbortController();
      const started = Date.now();
      ctx.log.debug("backup started on the script's declarations of its last run, while its child starts", {
        tables: hinted.backupTables,
      });
      const dumping = dump(hinted.backupTables, snapshotId, AbortSignal.any([ctx.interrupt.abortSignal, stop.signal]));
      const plan = await planning.catch(async (error: unknown) => {
        stop.abort(); // the script did not load: nothing will run, and nobody needs this dump
        await dumping;
        throw error;
      });
      ctx.timings.backupAhead = Math.max(0, plan.at - started);
      if (sameTables(plan.backupTables, hinted.backupTables)) return dumping;
      ctx.log.info('the script declares other tables than on its last run: its backup is taken again with their scope', {
        tables: plan.backupTables,
      });
      stop.abort();
      await dumping;
      await current!.discard();
      return dump(plan.backupTables, snapshotId);
    },
    record: async (pre) => (current ?? dumpOf((await planning).backupTables, ctx.interrupt.abortSignal)).record(pre),
    discard: async () => current?.discard(),
    afterCommit: async (commitLsn) => (current ? current.afterCommit(commitLsn) : null),
  };
}

function sameTables(a: readonly TableKey[], b: readonly TableKey[]): boolean {
  const set = new Set(a);
  return set.size === new Set(b).size && b.every((key) => set.has(key));
}

async function appendPost(ctx: RunContext, post: Snapshot, commitLsn: string, xid: string, pitr: PitrPostRecord | null): Promise<void> {
  try {
    await ctx.audit.append(
      'run.post',
      { status: 'committed', snapshot: post, commitLsn, xid, ...(pitr ? { pitr } : {}) },
      { runId: ctx.runId },
    );
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

/** The data is committed and recorded; only the archive's copy of its WAL is unconfirmed. */
function archiveNotConfirmed(runId: string, pitr: PitrPostRecord): SafeRunError {
  return new SafeRunError(
    `Run ${runId} COMMITTED (recorded in run.post), but its WAL is not confirmed in the pgBackRest archive: ${pitr.error ?? 'unknown reason'}`,
    ExitCode.backupFailed,
    'Fix WAL archiving (pg_stat_archiver and the server log say why; `safe-run doctor` checks it). A restore to just before this run still works once the archive catches up.',
  );
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
      git: await ctx.facts().git,
      touches: script.touches,
      limits: script.limits,
      critical: script.critical,
      ddl: script.ddl,
    },
    args: ctx.options.args,
    dryRun: ctx.options.dryRun,
    operator: await ctx.facts().operator,
    host: os.hostname(),
    reason: ctx.options.reason,
    url: redactUrl(ctx.url),
    snapshot: pre,
    backup,
  };
}

/** Runs `step` and records how long it took, however it ends. */
async function timed<T>(timings: Record<string, number>, name: string, step: () => Promise<T>): Promise<T> {
  const started = Date.now();
  try {
    return await step();
  } finally {
    timings[name] = Date.now() - started;
  }
}

function prefixed(prefix: string, record: Readonly<Record<string, number>>): Record<string, number> {
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [`${prefix}${k}`, v]));
}
