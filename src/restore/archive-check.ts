import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import path from 'node:path';
import { hashDirectory } from '../backup/archive.js';
import { ExitCode, SafeRunError } from '../errors.js';
import type { BackupRecord } from '../records/index.js';

export interface VerifiedArchive {
  readonly path: string;
  readonly format: 'custom' | 'directory';
  readonly sha256: string;
}

/**
 * A run's archive, proven to be the one its signed intent describes. pg_restore never sees
 * bytes that were not hashed first: a swapped or damaged archive could restore anything.
 */
export async function verifiedArchive(evidenceDir: string, runId: string, backup: BackupRecord): Promise<VerifiedArchive> {
  assertHasBackup(runId, backup);
  if (!backup.path || !backup.sha256) throw noBackup(runId, backup);
  const file = path.resolve(evidenceDir, backup.path);
  const rel = path.relative(path.resolve(evidenceDir), file);
  if (rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new SafeRunError(
      `The backup path ${backup.path} of run ${runId} points outside the evidence directory.`,
      ExitCode.auditFailed,
      'Run `safe-run verify`.',
    );
  }
  if (!existsSync(file)) {
    throw new SafeRunError(
      `The backup of run ${runId} is missing: ${file}.`,
      ExitCode.backupFailed,
      'Find the archive (moved with the evidence directory? pruned?) and put it back at that path; its sha256 must be ' +
        backup.sha256 +
        '.',
    );
  }
  const format = backup.format ?? 'custom';
  const actual = format === 'directory' ? (await hashDirectory(file)).sha256 : await hashFile(file);
  if (actual !== backup.sha256) {
    throw new SafeRunError(
      `The backup ${file} does not match run ${runId}'s signed intent: its sha256 is ${actual}, the intent records ${backup.sha256}. Refusing to restore from it.`,
      ExitCode.auditFailed,
      'The archive was changed or damaged after the backup. Keep it for the investigation; restore from another run (`safe-run log`) or another copy of the evidence.',
    );
  }
  return { path: file, format, sha256: actual };
}

/** Exit 4 for a run with no verified archive: scope none, a failed backup, an empty scope. */
export function assertHasBackup(runId: string, backup: BackupRecord): void {
  if (backup.status !== 'verified' || !backup.path || !backup.sha256) throw noBackup(runId, backup);
}

function noBackup(runId: string, backup: BackupRecord): SafeRunError {
  const why =
    backup.scope === 'none'
      ? 'it ran with backup scope "none"'
      : backup.status === 'failed'
        ? `its backup failed (${backup.error ?? 'no error recorded'}), so the script never ran`
        : 'its backup scope held no table';
  return new SafeRunError(
    `Run ${runId} has no backup to restore: ${why}.`,
    ExitCode.backupFailed,
    'Pick a run whose backup was verified: `safe-run log` lists them.',
  );
}

async function hashFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
