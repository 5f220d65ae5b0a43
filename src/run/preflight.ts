import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ExitCode, SafeRunError } from '../errors.js';

/**
 * The backup and the audit entries both live in the evidence directory. If it cannot be
 * written, no backup can be promised, so the run stops here (exit 4) before it locks or
 * snapshots anything, with the OS error and the path.
 */
export async function assertEvidenceWritable(evidenceDir: string): Promise<void> {
  const probe = path.join(evidenceDir, 'backups', `.probe-${process.pid}`);
  try {
    await mkdir(path.dirname(probe), { recursive: true });
    await writeFile(probe, 'probe');
    await rm(probe);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new SafeRunError(
      `The evidence directory ${evidenceDir} is not writable (${code}): no backup or audit entry can be written, so the script was not run.`,
      ExitCode.backupFailed,
      'Fix the path or permissions ("evidenceDir" in the config, or SAFE_RUN_EVIDENCE_DIR), or free disk space; `safe-run doctor` checks it.',
      { cause: error },
    );
  }
}
