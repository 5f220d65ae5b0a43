import { existsSync } from 'node:fs';
import path from 'node:path';
import { BUNDLE_DIR } from '../own-build.js';
import { blobFits } from '../startup-blob.js';
import { startedFrom } from '../startup.js';
import { pass, warn, type DoctorCheck } from './check.js';

/**
 * Whether this command started from the CLI's start-up snapshot (src/startup-snapshot.ts).
 * Without it every command takes about 150 ms more, silently: after a Node upgrade the blob no
 * longer fits until the next build. A warning, never a failure: the CLI works either way.
 */
export function checkStartup(): DoctorCheck {
  const name = 'start-up';
  const blob = path.join(BUNDLE_DIR, 'cli.blob');
  if (startedFrom() === 'snapshot') return pass(name, `from the start-up snapshot ${blob}`);
  const root = path.resolve(BUNDLE_DIR, '..', '..');
  const rebuild = `cd ${root} && npm run build`;
  if (!existsSync(blob))
    return warn(name, 'loading its modules: this build has no start-up snapshot (about 150 ms more per command)', rebuild);
  if (!blobFits(blob, BUNDLE_DIR)) {
    return warn(
      name,
      `loading its modules: the start-up snapshot was made by another Node than ${process.execPath}, or in another directory`,
      rebuild,
    );
  }
  return warn(
    name,
    'loading its modules: started as `node dist/src/cli.js`, not through the `safe-run` command',
    'Run safe-run through bin/safe-run (what npm links).',
  );
}
