import { randomBytes } from 'node:crypto';
import { mkdir, open, unlink } from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir } from '../audit/jsonl.js';
import { EVIDENCE_DIR_MODE } from '../audit/modes.js';
import { ExitCode, SafeRunError, errorCode } from '../errors.js';

/**
 * Create `dir` if needed and prove a file can be written, synced and removed there. As
 * root, permission bits never say no, so only doing it tells. Throws the OS error.
 * `doctor` runs the same probe.
 */
export async function probeWritable(dir: string): Promise<void> {
  const probe = path.join(dir, `.probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await mkdir(dir, { recursive: true, mode: EVIDENCE_DIR_MODE });
    const handle = await open(probe, 'wx', 0o600);
    try {
      await handle.write('safe-run probe\n');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await unlink(probe);
    await fsyncDir(dir);
  } catch (error) {
    await unlink(probe).catch(() => {});
    throw error;
  }
}

/**
 * The backup and the audit entries both live in the evidence directory. If it cannot be
 * written, no backup can be promised, so the run stops here (exit 4) before it locks or
 * snapshots anything, with the OS error and the path.
 */
export async function assertEvidenceWritable(evidenceDir: string): Promise<void> {
  try {
    await probeWritable(path.join(evidenceDir, 'backups'));
  } catch (error) {
    const code = errorCode(error) ?? 'error';
    throw new SafeRunError(
      `The evidence directory ${evidenceDir} is not writable (${code}): no backup or audit entry can be written, so the script was not run.`,
      ExitCode.backupFailed,
      'Fix the path or permissions ("evidenceDir" in the config, or SAFE_RUN_EVIDENCE_DIR), or free disk space; `safe-run doctor` checks it.',
      { cause: error },
    );
  }
}
