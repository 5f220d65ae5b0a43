import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { EVIDENCE_DIR_MODE, EVIDENCE_FILE_MODE } from '../audit/modes.js';
import { auditLogPath } from '../audit/read.js';
import { readPendingWitnesses } from '../audit/witness-state.js';
import { pass, warn, type DoctorCheck } from './check.js';
import { errorCode } from '../errors.js';

const octal = (mode: number): string => (mode & 0o777).toString(8).padStart(4, '0');

/**
 * Evidence written before safe-run made it owner-only (0700 directories, 0600 files) may
 * still be readable by others: backups hold users' emails and sessions. A warning, not a
 * failure, because nothing is wrong with the evidence itself.
 */
export async function checkEvidenceModes(evidenceDir: string): Promise<DoctorCheck> {
  const loose: string[] = [];
  const look = async (file: string, allowed: number): Promise<void> => {
    try {
      const info = await stat(file);
      if ((info.mode & 0o777 & ~allowed) !== 0) loose.push(`${file} ${octal(info.mode)}`);
    } catch (error) {
      // Missing, or a file in the way: the evidence-dir check already says so.
      if (!['ENOENT', 'ENOTDIR'].includes(errorCode(error) ?? '')) throw error;
    }
  };
  await look(evidenceDir, EVIDENCE_DIR_MODE);
  await look(auditLogPath(evidenceDir), EVIDENCE_FILE_MODE);
  const backups = path.join(evidenceDir, 'backups');
  await look(backups, EVIDENCE_DIR_MODE);
  const names = await readdir(backups).catch(() => [] as string[]);
  for (const name of names) {
    const file = path.join(backups, name);
    const isDir = (await stat(file).catch(() => null))?.isDirectory() ?? false;
    await look(file, isDir ? EVIDENCE_DIR_MODE : EVIDENCE_FILE_MODE);
  }
  if (!loose.length) return pass('evidence-modes', `${evidenceDir}: owner-only (directories 0700, files 0600)`);
  const shown = loose.slice(0, 5).join(', ') + (loose.length > 5 ? `, … (${loose.length} in all)` : '');
  return warn('evidence-modes', `readable by others: ${shown}`, `Run \`chmod -R go-rwx ${evidenceDir}\`: backups hold users' data.`);
}

/** A witness that keeps failing leaves the log's off-site copy behind; say since when. */
export async function checkWitnesses(evidenceDir: string, configured: number): Promise<DoctorCheck> {
  const pending = await readPendingWitnesses(evidenceDir).catch(() => []);
  if (!pending.length) return pass('witness', configured ? `${configured} witness(es), none behind` : 'no witness configured');
  const lines = pending.map((w) => `\`${w.command}\` missed heads since entry ${w.since.seq} (${w.since.ts}): ${w.lastError}`);
  return warn(
    'witness',
    lines.join('; '),
    'Fix the witness command (run it by hand with a head on stdin); it gets the newest head at the next append.',
  );
}
