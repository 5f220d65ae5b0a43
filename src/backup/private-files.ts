import { chmod, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { EVIDENCE_DIR_MODE, EVIDENCE_FILE_MODE } from '../audit/modes.js';

/**
 * pg_dump creates a directory-format archive with its own umask (0755/0644): tighten what
 * it wrote to owner only, since a backup holds the users' data. A single-file archive is
 * created by safe-run itself with mode 0600 and passes through here unchanged.
 */
export async function restrictToOwner(target: string): Promise<void> {
  const info = await stat(target);
  if (!info.isDirectory()) {
    await chmod(target, EVIDENCE_FILE_MODE);
    return;
  }
  await chmod(target, EVIDENCE_DIR_MODE);
  for (const name of await readdir(target)) await restrictToOwner(path.join(target, name));
}
