import { execa } from 'execa';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import { pgChildEnv } from '../../src/backup/child-env.js';
import { resolvePgTool } from '../../src/backup/pg-tools.js';
import { backupScope } from '../../src/backup/scope.js';
import { openAuditLog } from '../../src/audit/log.js';
import { createDb, type Db } from '../../src/db/connection.js';
import { takeSnapshot } from '../../src/snapshot/take.js';
import { describeFailure, runCli, type CliRun } from '../child.js';
import { GROUPS, insertGroups, type BenchDatabase } from '../data.js';
import { alternate, type SideSamples } from '../measure.js';
import { createWorkspace, type Workspace } from '../workspace.js';

/**
 * safe-run as an operator feels it: whole processes (node's start-up, the CLI's modules,
 * every child it starts), against what a careful operator does by hand with PostgreSQL's
 * own programs, on the same data in the same minutes, alternating.
 *
 * The cleanup is the issue's: delete 1,000 `groups`, whose 2,440 `group_properties` go
 * with them by ON DELETE CASCADE (bench/data.ts builds both, with rows of a realistic
 * width), with a backup of exactly the tables the delete can reach: safe-run's touched scope,
 * passed as `--backup touched` so both sides dump the same tables. Both sides run the very
 * same SQL; the bench puts the deleted rows back between runs, untimed, so every run
 * deletes the same rows.
 */
const SCRIPT = 'bench-cascade-cleanup';

export interface CascadeCleanup {
  /** What safe-run's backup scope holds, and so what the manual pg_dump gets with -t. */
  readonly scope: readonly string[];
  readonly statement: string;
  readonly deletedPerRun: number;
  readonly cascadedPerRun: number;
}

export async function planCascadeCleanup(db: Db): Promise<CascadeCleanup> {
  const scope = await backupScope(db, ['public.groups'], 'touched');
  return {
    scope,
    statement: 'delete from public.groups where id % 20 = 0;',
    deletedPerRun: GROUPS.deletedGroups,
    cascadedPerRun: GROUPS.deletedProperties,
  };
}

function scriptSource(plan: CascadeCleanup): string {
  return [
    '-- @description Bench: delete every 20th group; their properties go by ON DELETE CASCADE',
    '-- @touches groups: delete',
    '-- @touches group_properties: delete',
    '-- @limit groups.delete 1000',
    '-- @limit group_properties.delete 5000',
    plan.statement,
    '',
  ].join('\n');
}

/** Puts back what a cleanup deleted, then lets VACUUM ANALYZE tidy up. */
async function reseedGroups(bench: BenchDatabase): Promise<void> {
  const db = createDb(bench.url, { maxConnections: 1, applicationName: 'safe-run-bench-reseed' });
  try {
    await insertGroups(db, true);
    await sql`vacuum analyze groups, group_properties`.execute(db);
  } finally {
    await db.destroy();
  }
}

interface PgPrograms {
  readonly pgDump: string;
  readonly pgRestore: string;
  readonly psql: string;
}

async function pgPrograms(db: Db): Promise<PgPrograms> {
  const { rows } = await sql<{ v: number }>`select current_setting('server_version_num')::int as v`.execute(db);
  const major = Math.floor(rows[0]!.v / 10000);
  const pgDump = (await resolvePgTool('pg_dump', major)).path;
  const pgRestore = (await resolvePgTool('pg_restore', major)).path;
  // psql from the same installation as the pg_dump that fits the server.
  return { pgDump, pgRestore, psql: path.join(path.dirname(pgDump), 'psql') };
}

async function run(file: string, args: readonly string[], env: Record<string, string>): Promise<void> {
  const result = await execa(file, args, { env, extendEnv: false, stdin: 'ignore', reject: false });
  if (result.exitCode !== 0) throw new Error(`${path.basename(file)} exited ${result.exitCode}: ${String(result.stderr).slice(0, 300)}`);
}

function timed(fn: () => Promise<void>): () => Promise<number> {
  return async () => {
    const started = performance.now();
    await fn();
    return performance.now() - started;
  };
}

export interface GuardCliComparison {
  readonly safeRun: SideSamples;
  readonly manual: SideSamples;
  readonly tables: readonly string[];
  readonly deletedPerRun: number;
  readonly cascadedPerRun: number;
  /** The pipeline's own step timings (ms) of the last timed safe-run round. */
  readonly lastRunTimingsMs: Readonly<Record<string, number>>;
}

/**
 * `safe-run bench-cascade-cleanup` (touched backup, the default) against `pg_dump -Fc -t`
 * of the same tables, `pg_restore -l` of the archive, then the delete in `psql -1`.
 */
export async function compareGuardCliWithManual(bench: BenchDatabase, rounds: number): Promise<GuardCliComparison> {
  const ws = await createWorkspace('cli-guard');
  const db = createDb(bench.url, { maxConnections: 1, applicationName: 'safe-run-bench' });
  try {
    const plan = await planCascadeCleanup(db);
    const programs = await pgPrograms(db);
    const scriptsDir = path.join(ws.dir, 'scripts');
    mkdirSync(scriptsDir);
    writeFileSync(path.join(scriptsDir, `${SCRIPT}.sql`), scriptSource(plan));
    const manualSql = path.join(ws.dir, 'manual.sql');
    writeFileSync(manualSql, `${plan.statement}\n`);
    await ws.config(bench.url, { scriptsDir });
    const archive = path.join(ws.dir, 'manual.dump');
    const env = pgChildEnv(new URL(bench.url), 'manual-cleanup');
    let last: Record<string, number> = {};

    const safeRun = async (): Promise<number> => {
      const result: CliRun = await runCli(
        [SCRIPT, '--backup', 'touched', '--json', '--config', ws.configFile, '--reason', 'bench'],
        ws.env(bench.url),
        ws.dir,
      );
      const json = result.exitCode === 0 ? (JSON.parse(result.stdout) as RunJson) : null;
      const deleted = json?.changes['public.groups']?.deleted;
      const cascaded = json?.changes['public.group_properties']?.deleted;
      if (json?.status !== 'committed' || deleted !== plan.deletedPerRun || cascaded !== plan.cascadedPerRun)
        throw new Error(
          `${describeFailure(`safe-run ${SCRIPT}`, result)} (deleted ${deleted} + ${cascaded}, expected ${plan.deletedPerRun} + ${plan.cascadedPerRun})`,
        );
      last = json.timingsMs;
      return result.wallMs;
    };
    const manual = timed(async () => {
      // pg_dump's own default compression, as an operator types it (safe-run's default is level 1).
      await run(programs.pgDump, ['-Fc', ...plan.scope.flatMap((t) => ['-t', t]), '-f', archive], env);
      await run(programs.pgRestore, ['-l', archive], env);
      await run(programs.psql, ['-X', '-q', '-1', '-v', 'ON_ERROR_STOP=1', '-f', manualSql], env);
    });
    const [a, b] = await alternate(
      [
        { name: `safe-run ${SCRIPT} (CLI, touched backup)`, run: safeRun },
        { name: 'pg_dump -Fc -t, pg_restore -l, psql -1', run: manual },
      ],
      {
        rounds,
        label: 'guarded cleanup, whole processes',
        before: async () => {
          rmSync(archive, { force: true });
          rmSync(path.join(ws.evidenceDir, 'backups'), { recursive: true, force: true });
          await reseedGroups(bench);
        },
      },
    );
    return {
      safeRun: a!,
      manual: b!,
      tables: plan.scope,
      deletedPerRun: plan.deletedPerRun,
      cascadedPerRun: plan.cascadedPerRun,
      lastRunTimingsMs: last,
    };
  } finally {
    await db.destroy();
    await ws.remove();
  }
}

interface RunJson {
  readonly status: string;
  readonly changes: Readonly<Record<string, { readonly deleted: number }>>;
  readonly timingsMs: Record<string, number>;
}

export interface SnapshotCliComparison {
  readonly safeRun: SideSamples;
  readonly check: SideSamples;
  /** check without a checkpoint (history/checkpoint.ts): the first one, or one without the signing key. */
  readonly wholeLogCheck: SideSamples;
  readonly psql: SideSamples;
  readonly tables: number;
  readonly countedExactly: number;
  /** Entries in the log at the end: a day of cron snapshots, then what the rounds wrote. */
  readonly checkLogEntries: number;
}

/** A day of `safe-run snapshot` from cron every five minutes, the use `snapshot --help` suggests. */
const CRON_SNAPSHOTS_A_DAY = 288;

/**
 * The log `check` reads as an operator's would be after a day of cron snapshots: signed
 * `snapshot` entries of this database, written here in process (the same entry the CLI
 * writes, without a process per entry). The database does not change meanwhile, so the
 * comparisons find nothing and `check` costs what reading the log costs.
 */
async function writeCronDay(db: Db, ws: Workspace, url: string): Promise<void> {
  const { snapshot } = await takeSnapshot(db, { url: new URL(url), exactTables: new Set(['public.users']) });
  const audit = await openAuditLog({ evidenceDir: ws.evidenceDir, signingKeyPath: ws.signingKey });
  for (let i = 0; i < CRON_SNAPSHOTS_A_DAY; i++) await audit.append('snapshot', { label: 'cron', snapshot });
}

/**
 * `safe-run snapshot` and `safe-run check` against one psql session running count(*) on every
 * user table (issue 14: "snapshot and check as fast as one psql session or faster").
 */
export async function compareSnapshotCliWithPsql(bench: BenchDatabase, rounds: number): Promise<SnapshotCliComparison> {
  const ws: Workspace = await createWorkspace('cli-snapshot');
  const db = createDb(bench.url, { maxConnections: 1, applicationName: 'safe-run-bench' });
  try {
    const programs = await pgPrograms(db);
    const { rows } = await sql<{ q: string }>`
      select format('select count(*) from %I.%I;', schemaname, relname) as q from pg_stat_user_tables order by 1`.execute(db);
    const countAll = path.join(ws.dir, 'count-all.sql');
    writeFileSync(countAll, `${rows.map((r) => r.q).join('\n')}\n`);
    await ws.config(bench.url);
    await writeCronDay(db, ws, bench.url);
    const env = pgChildEnv(new URL(bench.url), 'manual-count');
    let counted = 0;
    const safeRun = async (): Promise<number> => {
      const result = await runCli(['snapshot', '--label', 'bench', '--json', '--config', ws.configFile], ws.env(bench.url), ws.dir);
      if (result.exitCode !== 0) throw new Error(describeFailure('safe-run snapshot', result));
      const tables = (JSON.parse(result.stdout) as { tables: Record<string, { rowsKind: string }> }).tables;
      counted = Object.values(tables).filter((t) => t.rowsKind === 'exact').length;
      return result.wallMs;
    };
    // Exit 10 is drift found: a finished check all the same.
    const check = async (): Promise<number> => {
      const result = await runCli(['check', '--json', '--config', ws.configFile], ws.env(bench.url), ws.dir);
      if (result.exitCode !== 0 && result.exitCode !== 10) throw new Error(describeFailure('safe-run check', result));
      return result.wallMs;
    };
    // The first check of a log, or one on a host without the signing key: no checkpoint, the whole log.
    const wholeLogCheck = async (): Promise<number> => {
      rmSync(path.join(ws.evidenceDir, 'checkpoints'), { recursive: true, force: true });
      return check();
    };
    // Cron checks all day long beside the snapshots, so the check a round times starts where the last one stopped.
    await check();
    const psql = timed(() => run(programs.psql, ['-X', '-q', '-o', '/dev/null', '-f', countAll], env));
    const [a, c, w, b] = await alternate(
      [
        { name: 'safe-run snapshot (CLI)', run: safeRun },
        { name: `safe-run check (CLI, after a day of cron snapshots and checks)`, run: check },
        { name: `safe-run check (CLI, reading the whole log: ${CRON_SNAPSHOTS_A_DAY}+ snapshots)`, run: wholeLogCheck },
        { name: `psql: count(*) of each of ${rows.length} tables`, run: psql },
      ],
      { rounds, label: 'snapshot and check, whole processes' },
    );
    return {
      safeRun: a!,
      check: c!,
      wholeLogCheck: w!,
      psql: b!,
      tables: rows.length,
      countedExactly: counted,
      checkLogEntries: readFileSync(path.join(ws.evidenceDir, 'audit.jsonl'), 'utf8').split('\n').filter(Boolean).length,
    };
  } finally {
    await db.destroy();
    await ws.remove();
  }
}
