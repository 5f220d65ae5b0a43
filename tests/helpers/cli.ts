import { execa } from 'execa';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The built CLI, next to this compiled helper: <dist>/tests/helpers -> <dist>/src/cli.js. */
export const CLI_PATH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli.js');

export interface CliResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliOptions {
  readonly cwd?: string;
  readonly env?: Record<string, string | undefined>;
  readonly input?: string;
}

/** Run `safe-run <args>` as a user would: a child process, no TTY. */
export async function runCli(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  const result = await execa(process.execPath, [CLI_PATH, ...args], {
    cwd: options.cwd,
    env: { DATABASE_URL: undefined, ...options.env },
    extendEnv: true,
    reject: false,
    input: options.input ?? '',
  });
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
}

/** Parse `--json` stdout; fails the test with the stderr when stdout is not one JSON document. */
export function parseJson<T = Record<string, unknown>>(result: CliResult): T {
  try {
    return JSON.parse(result.stdout) as T;
  } catch {
    throw new Error(`stdout is not JSON (exit ${result.exitCode}).\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
  }
}
