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
  /** Start the CLI by loading its modules (`node dist/src/cli.js`), not from the start-up snapshot. */
  readonly fromModules?: boolean;
}

/** bin/safe-run, the command npm puts on PATH: it starts the CLI from the start-up snapshot. */
export const BIN_PATH = path.resolve(path.dirname(CLI_PATH), '../../bin/safe-run');

/**
 * Run `safe-run <args>` as a user would: bin/safe-run as a child process, no TTY. Tests that
 * signal the process run `node dist/src/cli.js` instead, so both ways of starting are tested.
 */
export async function runCli(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  const [file, argv] = options.fromModules ? [process.execPath, [CLI_PATH, ...args]] : [BIN_PATH, args];
  const result = await execa(file, argv, {
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
