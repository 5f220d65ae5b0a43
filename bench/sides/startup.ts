import { execa } from 'execa';
import path from 'node:path';
import { alternate, type Side, type SideSamples } from '../measure.js';
import { binPath, type Workspace } from '../workspace.js';

/**
 * Start-up of the CLI as an operator meets it: `safe-run --version` and `safe-run list`
 * (which reads the config and the scripts' declarations, no database) against `node -e 0`,
 * node's own start-up, in the same rounds. The figures are the differences: what safe-run
 * adds, whatever the machine's node costs. node starts as bin/safe-run starts it, without
 * NODE_EXTRA_CA_CERTS (src/db/extra-ca.ts says why), so that the difference is safe-run's own.
 */
export interface CliStartup {
  readonly node: SideSamples;
  readonly version: SideSamples;
  readonly list: SideSamples;
  readonly versionAboveNodeMs: number;
  readonly listAboveNodeMs: number;
}

export async function compareCliStartup(ws: Workspace, url: string, rounds: number): Promise<CliStartup> {
  // The declarations cache lives in the workspace, not in the operator's home: the untimed
  // warm-up fills it, so the rounds measure `list` as an operator meets it every day after.
  const env = { ...ws.env(url), NODE_ENV: 'production', XDG_CACHE_HOME: path.join(ws.dir, 'cache'), NODE_EXTRA_CA_CERTS: undefined };
  const child = (name: string, file: string, args: readonly string[]): Side => ({
    name,
    run: async () => {
      const started = performance.now();
      const result = await execa(file, args, { env, cwd: ws.dir, reject: false, stdin: 'ignore' });
      const ms = performance.now() - started;
      if (result.exitCode !== 0) throw new Error(`${name}: exit ${result.exitCode}: ${String(result.stderr).trim().slice(0, 300)}`);
      return ms;
    },
  });
  const [node, version, list] = await alternate(
    [
      child('node -e 0', process.execPath, ['-e', '0']),
      child('safe-run --version', binPath, ['--version']),
      child('safe-run list', binPath, ['list', '--config', ws.configFile]),
    ],
    { rounds, label: 'cli start-up' },
  );
  return {
    node: node!,
    version: version!,
    list: list!,
    versionAboveNodeMs: version!.medianMs - node!.medianMs,
    listAboveNodeMs: list!.medianMs - node!.medianMs,
  };
}
