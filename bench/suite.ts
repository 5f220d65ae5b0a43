import type { BenchArgs } from './args.js';
import { wants } from './args.js';
import { describeFailure, rssMethod, runCli } from './child.js';
import type { BenchDatabase } from './data.js';
import { progress, type SideSamples } from './measure.js';
import type { ComparisonRow, FigureName, Figures } from './report.js';
import { BackupBench, compareBackups, compareParallel } from './sides/backup.js';
import { compareGuardCliWithManual, compareSnapshotCliWithPsql } from './sides/cli.js';
import { compareCliStartup } from './sides/startup.js';
import { measureCpuCeiling } from './sides/cpu.js';
import { measureBlame, measureVerify, recordTemplate } from './sides/evidence.js';
import { measureLedger } from './sides/ledger.js';
import { compareGuardWithBare, reseedSessions } from './sides/guard.js';
import { compareChildWithInProcess } from './sides/ipc.js';
import { comparePitrWithFullDump } from './sides/pitr.js';
import { measureEvidenceStore } from './sides/store.js';
import { compareGuardedChildWithInProcess } from './sides/ipc-guarded.js';
import { cleanupSnapshotPlan, compareSnapshotGrowth, compareSnapshotWithNaive } from './sides/snapshot.js';
import type { Workspace } from './workspace.js';
import { createDb } from '../src/db/connection.js';
import { SyntheticHistory, type RunTemplate } from './history.js';
import { writeSignedBulk } from './signed-log.js';

/**
 * Every comparison, in an order that keeps the data warm for the next. Each one is fenced:
 * a module that is missing or broken turns its figures into null with the reason, and the
 * rest still run.
 */
export interface SuiteContext {
  readonly args: BenchArgs;
  readonly full: BenchDatabase;
  readonly tenth: BenchDatabase | null;
  readonly demoUrl: string;
  readonly ws: Workspace;
  readonly figures: Figures;
  readonly rows: ComparisonRow[];
  readonly details: Record<string, unknown>;
  readonly notes: string[];
}

async function fenced(ctx: SuiteContext, figures: readonly FigureName[], label: string, fn: () => Promise<void>): Promise<void> {
  progress(`\n== ${label}`);
  try {
    await fn();
  } catch (error) {
    const reason = `${label} failed: ${((error as Error).message ?? String(error)).split('\n')[0]!.slice(0, 300)}`;
    progress(`!! ${reason}`);
    for (const name of figures) if (ctx.figures.values.get(name) == null) ctx.figures.fail(name, reason);
  }
}

export async function runSuite(ctx: SuiteContext): Promise<void> {
  const { args, full, figures, rows, details } = ctx;
  const config = await ctx.ws.config(full.url);
  const db = createDb(full.url, { maxConnections: 1 });
  const plan = await cleanupSnapshotPlan(db, config).finally(() => db.destroy());

  if (wants(args, 'startup')) await startupFigures(ctx);

  if (wants(args, 'snapshot')) {
    await fenced(ctx, ['snapshot_speedup_vs_naive'], 'snapshot against count(*) of every table', async () => {
      const c = await compareSnapshotWithNaive(full, plan, args.rounds);
      figures.set('snapshot_speedup_vs_naive', c.naive.medianMs / c.safeRun.medianMs);
      rows.push(
        {
          what: 'pre+post snapshot vs exact counts',
          a: c.naive.name,
          aMs: c.naive.medianMs,
          b: c.safeRun.name,
          bMs: c.safeRun.medianMs,
          ratio: c.naive.medianMs / c.safeRun.medianMs,
          ratioMeans: 'A/B, speedup',
        },
        {
          what: 'the same, floor: nothing counted',
          a: c.naive.name,
          aMs: c.naive.medianMs,
          b: c.catalogOnly.name,
          bMs: c.catalogOnly.medianMs,
          ratio: c.naive.medianMs / c.catalogOnly.medianMs,
          ratioMeans: 'A/B, best possible',
        },
      );
      details.snapshot = c;
    });
  }
  if (wants(args, 'growth') && ctx.tenth) {
    const tenth = ctx.tenth;
    await fenced(ctx, ['snapshot_growth_10x_rows'], 'snapshot time against 10x the rows', async () => {
      const c = await compareSnapshotGrowth(full, tenth, plan, args.rounds);
      figures.set('snapshot_growth_10x_rows', c.full.medianMs / c.tenth.medianMs);
      rows.push({
        what: 'snapshot, 10x rows, same tables',
        a: c.full.name,
        aMs: c.full.medianMs,
        b: c.tenth.name,
        bMs: c.tenth.medianMs,
        ratio: c.full.medianMs / c.tenth.medianMs,
        ratioMeans: 'A/B, growth',
      });
      details.growth = c;
    });
  }
  // Before the guard comparisons, which fill the shared evidence directory with 10,000 runs:
  // these use workspaces of their own.
  if (wants(args, 'cli')) await cliFigures(ctx);
  const made: { template: RunTemplate | null } = { template: null };
  if (wants(args, 'verify') || wants(args, 'blame') || wants(args, 'guard')) {
    await fenced(ctx, ['verify_entries_per_s', 'blame_10k_runs_ms'], 'a real guarded run to copy entries from', async () => {
      made.template = await recordTemplate(ctx.demoUrl);
    });
  }
  const template = made.template;
  if (wants(args, 'guard')) {
    await fenced(ctx, ['guard_overhead_ratio', 'guard_overhead_ms'], 'guarded cleanup against the bare script', async () => {
      const c = await compareGuardWithBare(full, ctx.ws, args.rounds);
      figures.set('guard_overhead_ratio', c.guarded.medianMs / c.bare.medianMs);
      figures.set('guard_overhead_ms', c.guarded.medianMs - c.bare.medianMs);
      rows.push({
        what: `cleanup (${c.deletedPerRun} deletes), in-process`,
        a: c.guarded.name,
        aMs: c.guarded.medianMs,
        b: c.bare.name,
        bMs: c.bare.medianMs,
        ratio: c.guarded.medianMs / c.bare.medianMs,
        ratioMeans: 'A/B, overhead',
      });
      details.guard = c;
    });
    if (template) {
      const t: RunTemplate = template;
      await fenced(ctx, [], 'the same, with 10,000 earlier runs in the audit log', async () => {
        // Every guarded run reads the whole log for drift and unfinished runs, so its cost grows with the history.
        const history = new SyntheticHistory(t, Date.now() - 10_100 * 3_600_000, 7_000);
        await writeSignedBulk(ctx.ws.evidenceDir, ctx.ws.signingKey, 10_000, () => history.next());
        const c = await compareGuardWithBare(full, ctx.ws, Math.min(args.rounds, 3));
        rows.push({
          what: 'the same, 10,000 runs already logged',
          a: c.guarded.name,
          aMs: c.guarded.medianMs,
          b: c.bare.name,
          bMs: c.bare.medianMs,
          ratio: c.guarded.medianMs / c.bare.medianMs,
          ratioMeans: 'A/B, overhead',
        });
        details.guardLongLog = { ...c, overheadMs: c.guarded.medianMs - c.bare.medianMs };
      });
    }
  }
  if (wants(args, 'ipc')) {
    await fenced(
      ctx,
      ['ts_script_ipc_overhead_ratio', 'ts_script_ipc_round_trip_ms'],
      'the cleanup alone: in its child against in process',
      async () => {
        const c = await compareChildWithInProcess(full, args.rounds);
        figures.set('ts_script_ipc_overhead_ratio', c.child.medianMs / c.inProcess.medianMs);
        figures.set('ts_script_ipc_round_trip_ms', c.roundTripMs);
        rows.push({
          what: 'cleanup alone, script child vs in process',
          a: c.child.name,
          aMs: c.child.medianMs,
          b: c.inProcess.name,
          bMs: c.inProcess.medianMs,
          ratio: c.child.medianMs / c.inProcess.medianMs,
          ratioMeans: 'A/B, overhead',
        });
        details.ipc = c;
      },
    );
    await fenced(ctx, ['ts_script_guarded_run_overhead_ratio'], 'the guarded cleanup: script in its child against in process', async () => {
      const c = await compareGuardedChildWithInProcess(full, ctx.ws, args.rounds);
      figures.set('ts_script_guarded_run_overhead_ratio', c.child.medianMs / c.inProcess.medianMs);
      rows.push({
        what: 'guarded cleanup, script child vs in process',
        a: c.child.name,
        aMs: c.child.medianMs,
        b: c.inProcess.name,
        bMs: c.inProcess.medianMs,
        ratio: c.child.medianMs / c.inProcess.medianMs,
        ratioMeans: 'A/B, overhead',
      });
      details.ipcGuarded = { ...c, childCostMs: c.child.medianMs - c.inProcess.medianMs };
    });
  }
  if (wants(args, 'backup') || wants(args, 'parallel')) {
    const bb = await BackupBench.open(full, ctx.ws);
    try {
      if (wants(args, 'backup')) await backupFigures(ctx, bb);
      if (wants(args, 'parallel')) await parallelFigures(ctx, bb);
    } finally {
      await bb.close();
    }
  }
  let verifyRss: number | null = null;
  if ((wants(args, 'verify') || wants(args, 'rss')) && template) {
    const t: RunTemplate = template;
    await fenced(ctx, ['verify_entries_per_s'], 'verify a 100,000-entry log', async () => {
      const { ws, result } = await measureVerify(t, 100_000, Math.min(args.rounds, 3), ctx.demoUrl);
      await ws.remove();
      figures.set('verify_entries_per_s', result.entriesPerS);
      verifyRss = result.cli.exitCode === 0 ? result.cli.peakRssMb : null;
      details.verify = { ...result, cli: { exitCode: result.cli.exitCode, wallMs: result.cli.wallMs, peakRssMb: result.cli.peakRssMb } };
      if (result.cli.exitCode !== 0) ctx.notes.push(describeFailure('safe-run verify (for peak RSS)', result.cli));
    });
  }
  if (wants(args, 'blame') && template) {
    const t: RunTemplate = template;
    await fenced(ctx, ['blame_10k_runs_ms'], 'blame users over 10,000 runs', async () => {
      const b = await measureBlame(t, 10_000, Math.min(args.rounds, 3), ctx.demoUrl);
      figures.set('blame_10k_runs_ms', b.medianMs);
      details.blame = {
        runs: b.runs,
        entries: b.entries,
        bytes: b.bytes,
        medianMs: b.medianMs,
        changes: b.changes,
        cliStartupMs: b.cliStartupMs,
        samplesMs: b.samples.map((s) => s.wallMs),
        peakRssMb: b.samples.map((s) => s.peakRssMb),
      };
    });
  }
  if (wants(args, 'rss')) await rssFigures(ctx, verifyRss);
  if (wants(args, 'ledger')) await ledgerFigures(ctx);
  if (wants(args, 'pitr')) await pitrFigures(ctx);
  if (wants(args, 'store')) await storeFigures(ctx);
}

/** The shared evidence store against the file log, in the same rounds, then 8 processes at once. */
async function storeFigures(ctx: SuiteContext): Promise<void> {
  const names: FigureName[] = ['evidence_store_append_per_s', 'evidence_store_8_hosts_append_per_s'];
  await fenced(ctx, names, 'evidence store: appends from one host, then from 8 processes', async () => {
    const c = await measureEvidenceStore(ctx.demoUrl, ctx.args.rounds, ctx.args.quick);
    if (!c.hosts.chainsVerified) throw new Error('the 8 chains written at once did not all verify');
    ctx.figures.set('evidence_store_append_per_s', c.storeAppendPerS);
    ctx.figures.set('evidence_store_8_hosts_append_per_s', c.hosts.entriesPerS);
    const [file, store] = [c.sides.find((s) => s.name === 'file audit.jsonl')!, c.sides.find((s) => s.name === 'evidence store')!];
    ctx.rows.push({
      what: `${c.appendsPerRound} signed appends, one host`,
      a: store.name,
      aMs: store.medianMs,
      b: file.name,
      bMs: file.medianMs,
      ratio: store.medianMs / file.medianMs,
      ratioMeans: 'A/B, time',
    });
    ctx.details.evidenceStore = c;
  });
}

/** In a cluster of its own that archives WAL (see sides/pitr.ts), with the same tables and rows. */
async function pitrFigures(ctx: SuiteContext): Promise<void> {
  const names: FigureName[] = ['pitr_backup_overhead_ms', 'pitr_vs_full_dump_time_ratio'];
  await fenced(ctx, names, 'backup step: pgbackrest mode against a full pg_dump', async () => {
    const c = await comparePitrWithFullDump(ctx.args.tables, ctx.args.rows, ctx.args.rowBytes, ctx.ws, ctx.args.backupRounds);
    ctx.figures.set('pitr_backup_overhead_ms', c.pitr.medianMs);
    ctx.figures.set('pitr_vs_full_dump_time_ratio', c.pitr.medianMs / c.fullDump.medianMs);
    ctx.rows.push({
      what: 'backup step of a guarded run',
      a: c.fullDump.name,
      aMs: c.fullDump.medianMs,
      b: c.pitr.name,
      bMs: c.pitr.medianMs,
      ratio: c.pitr.medianMs / c.fullDump.medianMs,
      ratioMeans: 'B/A, share of a full dump',
    });
    ctx.details.pitr = c;
  });
}

/** A row whose ratio is A's time over B's. */
function timeRatioRow(what: string, a: SideSamples, b: SideSamples, ratioMeans: string): ComparisonRow {
  return { what, a: a.name, aMs: a.medianMs, b: b.name, bMs: b.medianMs, ratio: a.medianMs / b.medianMs, ratioMeans };
}

/** Whole processes, as an operator runs them: the CLI against PostgreSQL's own programs. */
async function cliFigures(ctx: SuiteContext): Promise<void> {
  await fenced(
    ctx,
    ['snapshot_cli_vs_psql_ratio', 'check_cli_vs_psql_ratio'],
    'safe-run snapshot and check against one psql session counting every table',
    async () => {
      const c = await compareSnapshotCliWithPsql(ctx.full, ctx.args.rounds);
      const snapshot = timeRatioRow(
        `snapshot, whole processes (${c.countedExactly} of ${c.tables} tables exact)`,
        c.safeRun,
        c.psql,
        'A/B, time',
      );
      const check = timeRatioRow(`check, whole processes (a log of ${c.checkLogEntries} entries)`, c.check, c.psql, 'A/B, time');
      const whole = timeRatioRow('check reading the whole log (no checkpoint), whole processes', c.wholeLogCheck, c.psql, 'A/B, time');
      ctx.figures.set('snapshot_cli_vs_psql_ratio', snapshot.ratio);
      ctx.figures.set('check_cli_vs_psql_ratio', check.ratio);
      ctx.rows.push(snapshot, check, whole);
      ctx.details.snapshotCli = c;
    },
  );
  await fenced(ctx, ['guard_cli_vs_manual_ratio'], 'guarded cascade cleanup against doing it safely by hand', async () => {
    const c = await compareGuardCliWithManual(ctx.full, ctx.args.rounds);
    const row = timeRatioRow(
      `cleanup (${c.deletedPerRun} + ${c.cascadedPerRun} by cascade), whole processes`,
      c.safeRun,
      c.manual,
      'A/B, overhead',
    );
    ctx.figures.set('guard_cli_vs_manual_ratio', row.ratio);
    ctx.rows.push(row);
    ctx.details.guardCli = c;
  });
}

async function backupFigures(ctx: SuiteContext, bb: BackupBench): Promise<void> {
  const names: FigureName[] = ['backup_wrapper_overhead_ratio', 'scoped_vs_full_backup_time_ratio', 'scoped_vs_full_backup_bytes_ratio'];
  await fenced(ctx, names, 'backup: safe-run against pg_dump, touched against full', async () => {
    const c = await compareBackups(bb, ctx.args.backupRounds);
    ctx.figures.set('backup_wrapper_overhead_ratio', c.safeRunFull.medianMs / c.rawFull.medianMs);
    ctx.figures.set('scoped_vs_full_backup_time_ratio', c.safeRunTouched.medianMs / c.safeRunFull.medianMs);
    ctx.figures.set('scoped_vs_full_backup_bytes_ratio', c.bytes.touched / c.bytes.full);
    ctx.rows.push(
      {
        what: 'full backup, wrapper cost',
        a: c.safeRunFull.name,
        aMs: c.safeRunFull.medianMs,
        b: c.rawFull.name,
        bMs: c.rawFull.medianMs,
        ratio: c.safeRunFull.medianMs / c.rawFull.medianMs,
        ratioMeans: 'A/B, overhead',
      },
      {
        what: 'touched backup, wrapper cost',
        a: c.safeRunTouched.name,
        aMs: c.safeRunTouched.medianMs,
        b: c.rawTouched.name,
        bMs: c.rawTouched.medianMs,
        ratio: c.safeRunTouched.medianMs / c.rawTouched.medianMs,
        ratioMeans: 'A/B, overhead',
      },
      {
        what: `backup scope (${c.touchedTables.join(', ')})`,
        a: c.safeRunTouched.name,
        aMs: c.safeRunTouched.medianMs,
        b: c.safeRunFull.name,
        bMs: c.safeRunFull.medianMs,
        ratio: c.safeRunTouched.medianMs / c.safeRunFull.medianMs,
        ratioMeans: 'A/B, time',
      },
    );
    ctx.details.backup = c;
  });
}

async function parallelFigures(ctx: SuiteContext, bb: BackupBench): Promise<void> {
  await fenced(ctx, ['parallel_full_backup_speedup'], 'full backup, jobs=2 against jobs=1', async () => {
    const c = await compareParallel(bb, ctx.args.backupRounds);
    ctx.figures.set('parallel_full_backup_speedup', c.rawJobs1.medianMs / c.rawJobs2.medianMs);
    ctx.rows.push(
      {
        what: 'full backup, directory format',
        a: c.rawJobs1.name,
        aMs: c.rawJobs1.medianMs,
        b: c.rawJobs2.name,
        bMs: c.rawJobs2.medianMs,
        ratio: c.rawJobs1.medianMs / c.rawJobs2.medianMs,
        ratioMeans: 'A/B, speedup',
      },
      {
        what: 'full backup jobs=2, wrapper cost',
        a: c.safeRunJobs2.name,
        aMs: c.safeRunJobs2.medianMs,
        b: c.rawJobs2.name,
        bMs: c.rawJobs2.medianMs,
        ratio: c.safeRunJobs2.medianMs / c.rawJobs2.medianMs,
        ratioMeans: 'A/B, overhead',
      },
    );
    const ceiling = await measureCpuCeiling(3);
    ctx.details.parallel = { ...c, cpuCeiling: ceiling };
    ctx.notes.push(
      `two CPU-bound processes at once run ${ceiling.speedup.toFixed(2)}x faster than one after the other on this machine: that is the ceiling for any jobs=2 speedup here`,
    );
  });
}

/** The CLI as a child under GNU time: a guarded run without and with a full backup, and verify. */
async function rssFigures(ctx: SuiteContext, verifyRss: number | null): Promise<void> {
  await fenced(ctx, ['peak_rss_mb'], 'peak memory of the CLI', async () => {
    if (!rssMethod) throw new Error('/usr/bin/time is not installed (Debian package `time`)');
    const measured: Record<string, number | null> = { verify: verifyRss };
    const wall: Record<string, number> = {};
    for (const [name, scope] of [
      ['run', 'none'],
      ['backup', 'full'],
    ] as const) {
      await reseedSessions(ctx.full);
      const run = await runCli(
        ['cleanup-invalid-sessions', '--backup', scope, '--json', '--config', ctx.ws.configFile, '--reason', 'bench rss'],
        ctx.ws.env(ctx.full.url),
        ctx.ws.dir,
      );
      if (run.exitCode !== 0) throw new Error(describeFailure(`safe-run cleanup-invalid-sessions --backup ${scope}`, run));
      measured[name] = run.peakRssMb;
      wall[name] = run.wallMs;
    }
    const known = Object.values(measured).filter((v): v is number => typeof v === 'number');
    ctx.figures.set('peak_rss_mb', Math.max(...known));
    ctx.details.peakRss = { method: rssMethod, mb: measured, cliWallMs: wall };
    if (verifyRss === null) ctx.notes.push('peak_rss_mb does not include verify: `safe-run verify` did not run (see above)');
  });
}

const LEDGER_FIGURES: FigureName[] = [
  'ledger_oltp_overhead_ratio',
  'ledger_bulk_delete_overhead_ratio',
  'ledger_bulk_delete_kept_rows_overhead_ratio',
  'blame_with_ledger_10k_statements_ms',
];

/** The change ledger (issue 12) against no protection, against a row-level audit trigger, and the floors of its design (bench/sides/ledger.ts). */
async function ledgerFigures(ctx: SuiteContext): Promise<void> {
  await fenced(ctx, LEDGER_FIGURES, 'change ledger: OLTP, bulk delete, blame', async () => {
    const l = await measureLedger(ctx.demoUrl, ctx.args.rounds, ctx.args.quick);
    const bulk = (name: string): number => l.bulkDelete.find((s) => s.name === name)!.medianMs;
    ctx.figures.set('ledger_oltp_overhead_ratio', l.oltpTps.plain / l.oltpTps.keep);
    ctx.figures.set('ledger_bulk_delete_overhead_ratio', bulk('count') / bulk('plain'));
    ctx.figures.set('ledger_bulk_delete_kept_rows_overhead_ratio', bulk('keep') / bulk('plain'));
    ctx.figures.set('blame_with_ledger_10k_statements_ms', l.blameMs);
    const tpsMs = (tps: number): number => 1000 / tps;
    ctx.rows.push(
      {
        what: 'pgbench UPDATE+INSERT, ledger with rows',
        a: 'unprotected',
        aMs: tpsMs(l.oltpTps.plain),
        b: 'ledger, rows kept',
        bMs: tpsMs(l.oltpTps.keep),
        ratio: l.oltpTps.plain / l.oltpTps.keep,
        ratioMeans: 'B/A, overhead',
      },
      {
        what: 'pgbench UPDATE+INSERT, row-level audit',
        a: 'unprotected',
        aMs: tpsMs(l.oltpTps.plain),
        b: 'row audit trigger',
        bMs: tpsMs(l.oltpTps.audit),
        ratio: l.oltpTps.plain / l.oltpTps.audit,
        ratioMeans: 'B/A, overhead',
      },
      {
        what: 'pgbench UPDATE+INSERT, empty statement triggers (the floor)',
        a: 'unprotected',
        aMs: tpsMs(l.oltpTps.plain),
        b: 'empty trigger',
        bMs: tpsMs(l.oltpTps.floor),
        ratio: l.oltpTps.plain / l.oltpTps.floor,
        ratioMeans: 'B/A, overhead',
      },
      {
        what: 'pgbench UPDATE+INSERT, count + one row a statement (the least)',
        a: 'unprotected',
        aMs: tpsMs(l.oltpTps.plain),
        b: 'least ledger',
        bMs: tpsMs(l.oltpTps.least),
        ratio: l.oltpTps.plain / l.oltpTps.least,
        ratioMeans: 'B/A, overhead',
      },
      {
        what: 'DELETE 100,000 rows, ledger counts',
        a: 'unprotected',
        aMs: bulk('plain'),
        b: 'ledger, no rows',
        bMs: bulk('count'),
        ratio: bulk('count') / bulk('plain'),
        ratioMeans: 'B/A, overhead',
      },
      {
        what: 'DELETE 100,000 rows, ledger keeps rows',
        a: 'unprotected',
        aMs: bulk('plain'),
        b: 'ledger, rows kept',
        bMs: bulk('keep'),
        ratio: bulk('keep') / bulk('plain'),
        ratioMeans: 'B/A, overhead',
      },
      {
        what: 'DELETE 100,000 rows, empty statement trigger (the floor)',
        a: 'unprotected',
        aMs: bulk('plain'),
        b: 'empty trigger',
        bMs: bulk('floor'),
        ratio: bulk('floor') / bulk('plain'),
        ratioMeans: 'B/A, overhead',
      },
      {
        what: 'DELETE 100,000 rows, count + one row (the least)',
        a: 'unprotected',
        aMs: bulk('plain'),
        b: 'least ledger',
        bMs: bulk('least'),
        ratio: bulk('least') / bulk('plain'),
        ratioMeans: 'B/A, overhead',
      },
      {
        what: 'DELETE 100,000 rows, the least + rows copied as they are',
        a: 'unprotected',
        aMs: bulk('plain'),
        b: 'least, rows copied',
        bMs: bulk('copy'),
        ratio: bulk('copy') / bulk('plain'),
        ratioMeans: 'B/A, overhead',
      },
      {
        what: 'DELETE 100,000 rows, row-level audit',
        a: 'unprotected',
        aMs: bulk('plain'),
        b: 'row audit trigger',
        bMs: bulk('audit'),
        ratio: bulk('audit') / bulk('plain'),
        ratioMeans: 'B/A, overhead',
      },
    );
    ctx.details.ledger = l;
  });
}

/** Start-up first, while nothing else of the bench is running: `--version` and `list` against `node -e 0`. */
async function startupFigures(ctx: SuiteContext): Promise<void> {
  await fenced(ctx, ['cli_version_ms', 'cli_list_ms'], 'CLI start-up against node -e 0', async () => {
    const c = await compareCliStartup(ctx.ws, ctx.full.url, Math.max(10, ctx.args.rounds * 2));
    ctx.figures.set('cli_version_ms', c.versionAboveNodeMs);
    ctx.figures.set('cli_list_ms', c.listAboveNodeMs);
    for (const side of [c.version, c.list]) {
      ctx.rows.push({
        what: `start-up: ${side.name}`,
        a: side.name,
        aMs: side.medianMs,
        b: c.node.name,
        bMs: c.node.medianMs,
        ratio: side.medianMs / c.node.medianMs,
        ratioMeans: 'A/B, time',
      });
    }
    ctx.details.cli = c;
  });
}
