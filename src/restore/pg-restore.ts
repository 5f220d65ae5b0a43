import { execa } from 'execa';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TocEntry } from '../backup/archive.js';
import { dbnameConninfo, pgChildEnv } from '../backup/child-env.js';
import { ExitCode, SafeRunError } from '../errors.js';
import { listFileText } from './toc.js';

export interface DataOnlyRestore {
  readonly bin: string;
  readonly archive: string;
  /** The database to fill. Its credentials reach pg_restore through PG* variables only. */
  readonly target: URL;
  /** The TOC entries to restore, in order. */
  readonly items: readonly TocEntry[];
}

/**
 * `restore --into`: rows only, into tables that already exist, all or nothing
 * (--single-transaction, --exit-on-error): a failed restore leaves the target as it was.
 * Sequences are left alone on purpose: setting a live sequence back to its value at backup
 * time would hand out ids that are already taken.
 */
export async function restoreRowsInto(run: DataOnlyRestore): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'safe-run-restore-'));
  try {
    const listFile = path.join(dir, 'restore.list');
    await writeFile(listFile, listFileText(run.items), { mode: 0o600 });
    const args = ['--data-only', '--no-owner', '--no-privileges', '--exit-on-error', '--single-transaction', '--no-password'];
    // pg_restore only connects when given --dbname; the name alone is no secret.
    args.push(`--dbname=${dbnameConninfo(run.target)}`, `--use-list=${listFile}`, run.archive);
    const result = await execa(run.bin, args, { env: pgChildEnv(run.target, 'safe-run restore'), extendEnv: false, stdin: 'ignore', reject: false });
    if (result.exitCode !== 0) {
      const stderr = String(result.stderr).trim();
      throw new SafeRunError(
        `Restore failed: pg_restore ${result.signal ? `was killed by ${result.signal}` : `exited ${result.exitCode}`}; nothing was restored${stderr ? `:\n${stderr}` : '.'}`,
        ExitCode.backupFailed,
        'Read pg_restore\'s message above: columns that changed since the backup, or a foreign key to a row that is not there, are the usual causes.',
      );
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
