import { silentLogger } from '../../src/logger.js';
import { withTarget } from '../../src/db/target.js';
import { runGuarded } from '../../src/run/pipeline.js';
import type { RunResult } from '../../src/run/types.js';
import { findScriptFiles, loadScriptByName } from '../../src/script/load.js';
import type { BenchDatabase } from '../data.js';
import { inProcessLoadedScript } from '../in-process-script.js';
import { alternate, type SideSamples } from '../measure.js';
import { timeMs } from '../measure.js';
import type { Workspace } from '../workspace.js';
import { expectedDeletes, reseedSessions } from './guard.js';

/**
 * What the script's child costs an operator: the whole guarded run of the session cleanup
 * (runGuarded, backup scope none) with the script in its confined child, against the very
 * same run with the script imported into this process. Everything else (snapshots, audit,
 * the gate's policy, the guard's measurements) is on both sides, so the difference is the
 * child: Node's start-up under the permission model, the import in it, and the IPC hops.
 */
export interface GuardedIpcComparison {
  readonly child: SideSamples;
  readonly inProcess: SideSamples;
  readonly deletedPerRun: number;
}

const OPTIONS = { scriptName: 'cleanup-invalid-sessions', args: [], dryRun: false, reason: 'bench ipc', backupScope: 'none' } as const;

const loadInProcess: typeof loadScriptByName = async (name, dirs) => {
  const file = findScriptFiles(dirs).get(name);
  if (!file) throw new Error(`no script ${name} in ${dirs.join(', ')}`);
  return inProcessLoadedScript(file);
};

export async function compareGuardedChildWithInProcess(bench: BenchDatabase, ws: Workspace, rounds: number): Promise<GuardedIpcComparison> {
  const config = await ws.config(bench.url, { backup: { scope: 'none' } });
  const expected = expectedDeletes(bench);
  const side = (load: typeof loadScriptByName) => async (): Promise<number> => {
    let result: RunResult | undefined;
    const ms = await timeMs(async () => {
      result = await withTarget(config.databaseUrl, (target) => runGuarded(config, OPTIONS, target, silentLogger, load));
    });
    const deleted = result?.changes['public.oidc_models']?.deleted;
    if (result?.status !== 'committed' || deleted !== expected) {
      throw new Error(
        `guarded cleanup: status ${result?.status}, deleted ${deleted} (expected committed, ${expected}): ${JSON.stringify(result?.violations ?? result?.error)}`,
      );
    }
    return ms;
  };
  const [child, local] = await alternate(
    [
      { name: 'guarded, script in its child', run: side(loadScriptByName) },
      { name: 'guarded, script in process', run: side(loadInProcess) },
    ],
    { rounds, label: 'guarded run, child vs in process', before: () => reseedSessions(bench) },
  );
  return { child: child!, inProcess: local!, deletedPerRun: expected };
}
