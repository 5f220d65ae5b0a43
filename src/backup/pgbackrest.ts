import { execa } from 'execa';
import os from 'node:os';
import type { PgBackRestConfig } from '../config/config.js';
import { ExitCode, SafeRunError } from '../errors.js';
import type { Logger } from '../logger.js';
import { clusterOwner } from './cluster-owner.js';

/**
 * Drives the `pgbackrest` program (Debian package `pgbackrest`) through execa, never a shell.
 * Options that can be secret (repo cipher pass, S3 keys) never reach argv: pgBackRest reads
 * them from its own config file or from PGBACKREST_* variables, which we pass through.
 */
export interface PgBackRestCall {
  readonly config: PgBackRestConfig;
  /** The target's password, if its URL has one: libpq inside pgBackRest reads PGPASSWORD. */
  readonly password?: string | null;
  readonly log: Logger;
}

const PASSED_THROUGH = ['PATH', 'LANG', 'LC_ALL', 'TZ', 'PGPASSFILE', 'PGSSLMODE', 'PGSSLROOTCERT'] as const;

export const PGBACKREST_INSTALL_HINT =
  'Install pgBackRest (Debian/Ubuntu: apt-get install pgbackrest), or set "backup.mode" back to "pg_dump".';

/**
 * Runs `pgbackrest --stanza=<stanza> [--config=<file>] <options> <command>` and returns stdout.
 * As root it runs as the `postgres` OS user, like the server's archive_command, so that the
 * repository, lock and log files keep one owner. Any failure is exit 4 with pgBackRest's own
 * error line: every caller is a backup step, and nothing may run after it fails.
 */
export async function pgbackrest(call: PgBackRestCall, command: string, options: readonly string[] = []): Promise<string> {
  const args = [`--stanza=${call.config.stanza}`, ...configArgs(call.config), ...options, command];
  call.log.debug('pgbackrest', { args });
  const owner = await clusterOwner();
  let result;
  try {
    result = await execa('pgbackrest', args, {
      env: childEnv(call.password),
      extendEnv: false,
      stdin: 'ignore',
      reject: false,
      cwd: os.tmpdir(),
      ...(owner ?? {}),
    });
  } catch (error) {
    throw notInstalled(error);
  }
  if ((result as { code?: string }).code === 'ENOENT' || /ENOENT/.test(String(result.message ?? ''))) throw notInstalled(result);
  if (result.exitCode !== 0) {
    throw new SafeRunError(
      `pgbackrest ${command} failed for stanza "${call.config.stanza}": ${firstError(String(result.stderr), String(result.stdout))}`,
      ExitCode.backupFailed,
      hintFor(command, call.config),
    );
  }
  return String(result.stdout);
}

/** "pgBackRest 2.45" -> "2.45"; null when the program is missing or says something else. */
export async function pgbackrestVersion(): Promise<string | null> {
  const result = await execa('pgbackrest', ['version'], { reject: false, extendEnv: false, env: { PATH: process.env.PATH ?? '' } }).catch(
    () => null,
  );
  const match = result && result.exitCode === 0 ? /pgBackRest\s+(\S+)/.exec(String(result.stdout)) : null;
  return match ? match[1]! : null;
}

export function configArgs(config: PgBackRestConfig): string[] {
  return config.configPath ? [`--config=${config.configPath}`] : [];
}

function childEnv(password: string | null | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of PASSED_THROUGH) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  // pgBackRest's documented way to take any option from the environment, secrets included.
  for (const [name, value] of Object.entries(process.env)) if (name.startsWith('PGBACKREST_') && value !== undefined) env[name] = value;
  if (password) env.PGPASSWORD = password;
  return env;
}

function notInstalled(cause: unknown): SafeRunError {
  return new SafeRunError('pgBackRest is not installed: no `pgbackrest` program on PATH.', ExitCode.backupFailed, PGBACKREST_INSTALL_HINT, {
    cause,
  });
}

/** pgBackRest prints "ERROR: [055]: …" lines; the first one says what is wrong. */
function firstError(stderr: string, stdout: string): string {
  const text = `${stderr}\n${stdout}`;
  const line = text.split('\n').find((l) => /ERROR:/.test(l));
  return (line ?? text.trim().split('\n')[0] ?? 'no output').replace(/^.*?ERROR:\s*/, '').trim();
}

function hintFor(command: string, config: PgBackRestConfig): string {
  const where = config.configPath ? ` (config ${config.configPath})` : '';
  if (command === 'check') {
    return `The script did not run. Check the stanza and WAL archiving${where}: \`pgbackrest --stanza=${config.stanza} check\` as the postgres user shows the same error; archive_command must push to this stanza.`;
  }
  const consequence = command === 'restore' ? 'Nothing was started; the live cluster was not touched.' : 'The script did not run.';
  return `${consequence} Run \`pgbackrest --stanza=${config.stanza} ${command}\` as the postgres user${where} to see the full error.`;
}
