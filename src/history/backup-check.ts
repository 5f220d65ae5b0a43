import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { hashDirectory } from '../backup/archive.js';
import type { BackupRecord } from '../records/index.js';

/**
 * Is the run's backup still the file that was verified at run time? The intent records its
 * sha256 after `pg_restore --list` passed; a restore from a file that changed since would
 * restore something nobody verified.
 */
export interface BackupCheck {
  readonly path: string;
  readonly exists: boolean;
  readonly bytes: number | null;
  readonly sha256Matches: boolean | null;
}

export async function checkBackupFile(evidenceDir: string, backup: BackupRecord): Promise<BackupCheck | null> {
  if (!backup.path) return null;
  const file = path.resolve(evidenceDir, backup.path);
  let info;
  try {
    info = await stat(file);
  } catch {
    return { path: file, exists: false, bytes: null, sha256Matches: null };
  }
  if (!backup.sha256) return { path: file, exists: true, bytes: info.size, sha256Matches: null };
  if (info.isDirectory()) {
    const dir = await hashDirectory(file);
    return { path: file, exists: true, bytes: dir.bytes, sha256Matches: dir.sha256 === backup.sha256 };
  }
  return { path: file, exists: true, bytes: info.size, sha256Matches: (await sha256File(file)) === backup.sha256 };
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
