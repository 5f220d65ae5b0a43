import { execa } from 'execa';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { binPath } from './workspace.js';

/**
 * The CLI as an operator runs it: a child process, so that its peak memory can be read.
 * GNU time's %M is the maximum resident set of the child, and Linux folds the peak of
 * every descendant it waited for into it (pg_dump, pg_restore under the CLI), so one
 * number covers the whole process tree's largest process. Without /usr/bin/time the
 * figure is null and says why.
 */
const GNU_TIME = '/usr/bin/time';

export interface CliRun {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly wallMs: number;
  readonly peakRssMb: number | null;
}

export const rssMethod = existsSync(GNU_TIME)
  ? 'GNU time (/usr/bin/time -f %M): peak RSS of the CLI process, including the children it waited for (pg_dump, pg_restore)'
  : null;

export async function runCli(args: readonly string[], env: Record<string, string>, cwd: string): Promise<CliRun> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'safe-run-bench-time-'));
  const out = path.join(dir, 'rss');
  try {
    const [file, argv] = rssMethod ? [GNU_TIME, ['-f', '%M', '-o', out, binPath, ...args]] : [binPath, [...args]];
    const started = performance.now();
    const result = await execa(file, argv, {
      env: { ...env, NODE_ENV: 'production' },
      extendEnv: true,
      cwd,
      reject: false,
      stdin: 'ignore',
    });
    const wallMs = performance.now() - started;
    const kb = rssMethod && existsSync(out) ? Number(readFileSync(out, 'utf8').trim().split('\n').at(-1)) : Number.NaN;
    return {
      exitCode: result.exitCode ?? -1,
      stdout: String(result.stdout),
      stderr: String(result.stderr),
      wallMs,
      peakRssMb: Number.isFinite(kb) ? kb / 1024 : null,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function describeFailure(what: string, run: CliRun): string {
  return `${what}: exit ${run.exitCode}: ${(run.stderr || run.stdout).trim().split('\n').slice(-3).join(' | ').slice(0, 400)}`;
}
