import type { Config } from '../../src/config/config.js';
import { withTarget } from '../../src/db/target.js';
import { silentLogger } from '../../src/logger.js';
import { runGuarded } from '../../src/run/pipeline.js';
import type { RunResult } from '../../src/run/types.js';
import { startPgBackRestCluster } from '../../support/throwaway/pgbackrest.js';
import { buildBenchDatabase, type BenchDatabase } from '../data.js';
import { alternate, median, progress, timeMs, type SideSamples } from '../measure.js';
import type { Workspace } from '../workspace.js';
import { reseedSessions } from './guard.js';

/**
 * backup.mode "pgbackrest" against a full pg_dump, on the same bench data in a cluster of its
 * own that archives WAL into a local pgBackRest repository (the main bench cluster does not
 * archive, and turning archiving on there would tax every other figure). Both sides are real
 * guarded cleanups; each is timed by its backup step only, as the run records it:
 * - pgbackrest: check + positions + backup set (timingsMs.backup) and the WAL switch and
 *   archive wait after COMMIT (timingsMs.archive);
 * - pg_dump: the full dump on the exported snapshot plus pg_restore --list (timingsMs.backup).
 * The stanza's own full backup is scheduled work, taken once before the rounds, untimed.
 */
export interface PitrComparison {
  readonly pitr: SideSamples;
  readonly fullDump: SideSamples;
  readonly pitrStepsMs: Record<string, number>;
  readonly stanzaBackupMs: number;
}

export async function comparePitrWithFullDump(
  tables: number,
  rows: number,
  rowBytes: number | null,
  ws: Workspace,
  rounds: number,
): Promise<PitrComparison> {
  const cluster = await startPgBackRestCluster('safe_run_bench');
  try {
    const bench = await buildBenchDatabase(cluster.server.url, 'safe_run_bench_pitr', tables, rows, rowBytes, false);
    progress('  pgBackRest full backup of the bench cluster (scheduled work, not timed in the figure)');
    const stanzaBackupMs = await timeMs(() => cluster.pgbackrest(['--type=full', 'backup']));
    const pitrConfig = await ws.config(bench.url, {
      backup: { mode: 'pgbackrest', pgbackrest: { stanza: cluster.stanza, configPath: cluster.configPath } },
    });
    const dumpConfig = await ws.config(bench.url, { backup: { scope: 'full' } });
    const pitrSteps: Record<string, number>[] = [];
    const [pitr, fullDump] = await alternate(
      [
        {
          name: 'guarded run, backup.mode pgbackrest',
          run: async () => {
            const r = await guardedCleanup(pitrConfig, bench);
            pitrSteps.push({ backup: r.timingsMs.backup ?? 0, archive: r.timingsMs.archive ?? 0 });
            return (r.timingsMs.backup ?? 0) + (r.timingsMs.archive ?? 0);
          },
        },
        {
          name: 'guarded run, pg_dump --backup full',
          run: async () => (await guardedCleanup(dumpConfig, bench, 'full')).timingsMs.backup ?? 0,
        },
      ],
      { rounds, label: 'pitr against full dump', before: () => reseedSessions(bench) },
    );
    const timed = pitrSteps.slice(1);
    return {
      pitr: pitr!,
      fullDump: fullDump!,
      pitrStepsMs: { backup: median(timed.map((s) => s.backup!)), archive: median(timed.map((s) => s.archive!)) },
      stanzaBackupMs,
    };
  } finally {
    await cluster.stop();
  }
}

async function guardedCleanup(config: Config, bench: BenchDatabase, backupScope?: 'full'): Promise<RunResult> {
  const result = await withTarget(config.databaseUrl, (target) =>
    runGuarded(
      config,
      { scriptName: 'cleanup-invalid-sessions', args: [], dryRun: false, reason: 'bench', ...(backupScope ? { backupScope } : {}) },
      target,
      silentLogger,
    ),
  );
  if (result.status !== 'committed') throw new Error(`guarded cleanup on ${bench.name}: ${result.status}: ${JSON.stringify(result.error)}`);
  return result;
}
