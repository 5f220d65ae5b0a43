import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';
import { usageError } from '../errors.js';

/**
 * The program to run, found on PATH the way execvp would. Checked before the snapshot and
 * the backup: a typo must cost nothing, and must not leave an intent for a command that
 * never existed.
 */
export function resolveCommand(command: string, cwd: string, envPath = process.env.PATH ?? ''): string {
  const candidates = command.includes('/')
    ? [path.resolve(cwd, command)]
    : envPath
        .split(path.delimiter)
        .filter(Boolean)
        .map((dir) => path.resolve(cwd, dir, command));
  const found = candidates.find(isExecutableFile);
  if (found) return found;
  throw usageError(
    `Command not found: ${command}${command.includes('/') ? '' : ' (searched PATH)'}. Nothing was run.`,
    'Check the name, or give its path. The command goes after `--`: safe-run exec -- npm run db:reset',
  );
}

function isExecutableFile(file: string): boolean {
  try {
    if (!statSync(file).isFile()) return false;
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
