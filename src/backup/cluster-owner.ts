import { execa } from 'execa';
import { ExitCode, SafeRunError } from '../errors.js';

export interface OsUser {
  readonly uid: number;
  readonly gid: number;
}

/**
 * The OS user that owns PostgreSQL's files when we run as root: initdb and postgres refuse to
 * run as root, and pgBackRest must write its repository as the same user the server's
 * archive_command runs as. Null when we are not root (then we are that user already).
 */
export function clusterOwner(): Promise<OsUser | null> {
  // Asked before every pgBackRest call of a run: look it up once per process.
  return (cached ??= lookUpOwner());
}

let cached: Promise<OsUser | null> | undefined;

async function lookUpOwner(): Promise<OsUser | null> {
  if (process.getuid?.() !== 0) return null;
  const uid = await execa('id', ['-u', 'postgres'], { reject: false });
  const gid = await execa('id', ['-g', 'postgres'], { reject: false });
  if (uid.exitCode !== 0 || gid.exitCode !== 0) {
    throw new SafeRunError(
      'Running as root, and there is no `postgres` OS user to run PostgreSQL programs as.',
      ExitCode.usage,
      'Run as a normal user, or create the user: useradd --system postgres',
    );
  }
  return { uid: Number(uid.stdout), gid: Number(gid.stdout) };
}
