import { sql } from 'kysely';
import { createDb } from '../../src/db/connection.js';
import { silentLogger } from '../../src/logger.js';
import { withTarget } from '../../src/db/target.js';
import { runGuarded } from '../../src/run/pipeline.js';
import type { RunResult } from '../../src/run/types.js';
import { importScriptInProcess } from '../in-process-script.js';
import { EXPECTED_CLEANUP, seedDemo } from '../../demo/seed.js';
import { insertSessions, type BenchDatabase } from '../data.js';
import { alternate, median, timeMs, type SideSamples } from '../measure.js';
import { cleanupScriptPath, type Workspace } from '../workspace.js';

/**
 * The guard's cost: the cleanup through runGuarded (backup scope none, so the backup is
 * measured on its own elsewhere) against the same script run bare in one plain
 * transaction. Both sides are measured in-process, so node's start-up is in neither, and
 * both include what an operator's own runner would also do: load the TypeScript script,
 * connect, run it, commit, disconnect. Both commit real deletes; the deleted sessions are
 * put back between runs, untimed, so every run deletes the same rows.
 */
export interface GuardComparison {
  readonly guarded: SideSamples;
  readonly bare: SideSamples;
  readonly deletedPerRun: number;
  /** Median of the pipeline's own step timings over the guarded rounds. */
  readonly guardedStepsMs: Readonly<Record<string, number>>;
}

export function expectedDeletes(bench: BenchDatabase): number {
  return bench.sessions.deletable + EXPECTED_CLEANUP.deleted;
}

/** Puts back the sessions a cleanup deleted, then lets VACUUM tidy up so each run starts from the same table state. */
export async function reseedSessions(bench: BenchDatabase): Promise<void> {
  const db = createDb(bench.url, { maxConnections: 1, applicationName: 'safe-run-bench-reseed' });
  try {
    await seedDemo(db);
    await insertSessions(db, bench.sessions, true);
    await sql`vacuum analyze oidc_models, users`.execute(db);
  } finally {
    await db.destroy();
  }
}

export async function compareGuardWithBare(bench: BenchDatabase, ws: Workspace, rounds: number): Promise<GuardComparison> {
  const config = await ws.config(bench.url, { backup: { scope: 'none' } });
  const expected = expectedDeletes(bench);
  const steps: Record<string, number>[] = [];
  const guarded = async (): Promise<number> => {
    let result: RunResult | undefined;
    const ms = await timeMs(async () => {
      result = await withTarget(config.databaseUrl, (target) =>
        runGuarded(
          config,
          { scriptName: 'cleanup-invalid-sessions', args: [], dryRun: false, reason: 'bench', backupScope: 'none' },
          target,
          silentLogger,
        ),
      );
    });
    const deleted = result?.changes['public.oidc_models']?.deleted;
    if (result?.status !== 'committed' || deleted !== expected) {
      throw new Error(
        `guarded cleanup: status ${result?.status}, deleted ${deleted} (expected committed, ${expected}): ${JSON.stringify(result?.violations ?? result?.error)}`,
      );
    }
    steps.push({ ...result.timingsMs });
    return ms;
  };
  const bare = async (): Promise<number> => {
    let deleted = -1;
    const ms = await timeMs(async () => {
      // An operator's own runner: the module imported here, no child (safe-run's side runs it in one).
      const script = await importScriptInProcess(cleanupScriptPath);
      const db = createDb(bench.url, { maxConnections: 1, applicationName: 'bare-cleanup' });
      try {
        const out = (await db.transaction().execute((trx) => script.run({ db: trx, args: [], log: silentLogger, dryRun: false }))) as {
          deleted: number;
        };
        deleted = out.deleted;
      } finally {
        await db.destroy();
      }
    });
    if (deleted !== expected) throw new Error(`bare cleanup deleted ${deleted}, expected ${expected}`);
    return ms;
  };
  const [g, b] = await alternate(
    [
      { name: 'guarded (runGuarded, backup none)', run: guarded },
      { name: 'bare (one transaction)', run: bare },
    ],
    { rounds, label: 'guard overhead', before: () => reseedSessions(bench) },
  );
  // The warm-up run is the first entry; only the timed rounds count.
  const timed = steps.slice(1);
  const keys = [...new Set(timed.flatMap((s) => Object.keys(s)))];
  const guardedStepsMs = Object.fromEntries(keys.map((k) => [k, median(timed.map((s) => s[k] ?? 0))]));
  return { guarded: g!, bare: b!, deletedPerRun: expected, guardedStepsMs };
}
