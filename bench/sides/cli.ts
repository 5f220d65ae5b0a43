import { execa } from 'execa';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import { pgChildEnv } from '../../src/backup/child-env.js';
import { resolvePgTool } from '../../src/backup/pg-tools.js';
import { backupScope } from '../../src/backup/scope.js';
import { createDb, type Db } from '../../src/db/connection.js';
import { describeFailure, runCli, type CliRun } from '../child.js';
import { insertRows, type BenchDatabase } from '../data.js';
import { alternate, type SideSamples } from '../measure.js';
import type { TableSpec } from '../plan.js';
import { createWorkspace, type Workspace } from '../workspace.js';

/**
 * safe-run as an operator feels it: whole processes (node's start-up, the CLI's modules,
 * every child it starts), against what a careful operator does by hand with PostgreSQL's
 * own programs, on the same data in the same minutes, alternating.
 *
 * The cleanup is the issue's shape: delete rows of a small table whose children go with
 * them by ON DELETE CASCADE (groups and their properties), with a backup of exactly the
 * tables the delete can reach. Both sides run the very same SQL; the bench puts the
 * deleted rows back between runs, untimed, so every run deletes the same rows.
 */
const SCRIPT = 'bench-cascade-cleanup';

export interface CascadeCleanup {
  /** The table the script deletes from, then its cascade chain, parents first. */
  readonly chain: readonly TableSpec[];
  /** What safe-run's backup scope holds, and so what the manual pg_dump gets with -t. */
  readonly scope: readonly string[];
  readonly statement: string;
  readonly deletedPerRun: number;
}

/**
 * A chain three deep that only cascades (no SET NULL child, whose nulled keys a reseed
 * could not put back), away from the groups the large tables hang off.
 */
function pickChain(tables: readonly TableSpec[]): TableSpec[] {
  const byName = new Map(tables.map((t) => [t.name, t]));
  for (const parent of tables) {
    if (parent.large || !parent.parent || byName.get(parent.parent)?.parent) continue;
    const child = tables.find((t) => t.parent === parent.name && !t.large);
    const grandchild = child && tables.find((t) => t.parent === child.name && !t.large);
    const chain = [parent, child, grandchild].filter((t): t is TableSpec => t !== undefined);
    const onlyCascades = chain.every((t) => t.onDelete === 'cascade');
    const noOtherChildren = tables.filter((t) => chain.some((c) => c.name === t.parent)).length === chain.length - 1;
    if (chain.length === 3 && onlyCascades && noOtherChildren && !tables.some((t) => t.large && t.parent === parent.parent)) return chain;
  }
  throw new Error('the generated schema has no cascade chain three deep; use --tables 40 or more');
}

export async function planCascadeCleanup(db: Db, bench: BenchDatabase): Promise<CascadeCleanup> {
  const chain = pickChain(bench.tables);
  const parent = chain[0]!;
  const scope = await backupScope(db, [`public.${parent.name}`], 'touched');
  return {
    chain,
    scope,
    statement: `delete from public.${parent.name} where id % 2 = 0;`,
    deletedPerRun: Math.floor(parent.rows / 2),
  };
}

function scriptSource(plan: CascadeCleanup): string {
  return [
    `-- @description Bench: delete every other row of ${plan.chain[0]!.name}; their children go by ON DELETE CASCADE`,
    ...plan.chain.map((t) => `-- @touches ${t.name}: delete`),
    ...plan.chain.map((t) => `-- @limit ${t.name}.delete 10000000`),
    plan.statement,
    '',
  ].join('\n');
}

/** Puts back what a cleanup deleted, parents first, then lets VACUUM ANALYZE tidy up. */
async function reseedChain(bench: BenchDatabase, chain: readonly TableSpec[]): Promise<void> {
  const rowsOf = new Map(bench.tables.map((t) => [t.name, t.rows]));
  const db = createDb(bench.url, { maxConnections: 1, applicationName: 'safe-run-bench-reseed' });
  try {
    for (const spec of chain) await insertRows(db, spec, spec.parent ? rowsOf.get(spec.parent)! : 0, true);
    await sql`vacuum analyze ${sql.join(chain.map((t) => sql.table(t.name)))}`.execute(db);
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
    const plan = await planCascadeCleanup(db, bench);
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
      const result: CliRun = await runCli([SCRIPT, '--json', '--config', ws.configFile, '--reason', 'bench'], ws.env(bench.url), ws.dir);
      const json = result.exitCode === 0 ? (JSON.parse(result.stdout) as RunJson) : null;
      const deleted = json?.changes[`public.${plan.chain[0]!.name}`]?.deleted;
      if (json?.status !== 'committed' || deleted !== plan.deletedPerRun)
        throw new Error(`${describeFailure(`safe-run ${SCRIPT}`, result)} (deleted ${deleted}, expected ${plan.deletedPerRun})`);
      last = json.timingsMs;
      return result.wallMs;
    };
    const manual = timed(async () => {
      await run(programs.pgDump, ['-Fc', '-Z', '6', ...plan.scope.flatMap((t) => ['-t', t]), '-f', archive], env);
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
          await reseedChain(bench, plan.chain);
        },
      },
    );
    return { safeRun: a!, manual: b!, tables: plan.scope, deletedPerRun: plan.deletedPerRun, lastRunTimingsMs: last };
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
  readonly psql: SideSamples;
  readonly tables: number;
  readonly countedExactly: number;
}

/** `safe-run snapshot` against one psql session running count(*) on every user table. */
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
    const env = pgChildEnv(new URL(bench.url), 'manual-count');
    let counted = 0;
    const safeRun = async (): Promise<number> => {
      const result = await runCli(['snapshot', '--label', 'bench', '--json', '--config', ws.configFile], ws.env(bench.url), ws.dir);
      if (result.exitCode !== 0) throw new Error(describeFailure('safe-run snapshot', result));
      const tables = (JSON.parse(result.stdout) as { tables: Record<string, { rowsKind: string }> }).tables;
      counted = Object.values(tables).filter((t) => t.rowsKind === 'exact').length;
      return result.wallMs;
    };
    const psql = timed(() => run(programs.psql, ['-X', '-q', '-o', '/dev/null', '-f', countAll], env));
    const [a, b] = await alternate(
      [
        { name: 'safe-run snapshot (CLI)', run: safeRun },
        { name: `psql: count(*) of each of ${rows.length} tables`, run: psql },
      ],
      { rounds, label: 'snapshot, whole processes' },
    );
    return { safeRun: a!, psql: b!, tables: rows.length, countedExactly: counted };
  } finally {
    await db.destroy();
    await ws.remove();
  }
}
