import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** `$XDG_CACHE_HOME/safe-run` (else `~/.cache/safe-run`): disposable answers kept between commands, outside the evidence. */
export function safeRunCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'safe-run');
}

/**
 * Writes a cache file whole and renames it into place, readable by its owner alone: a reader
 * sees the old file or the new one. False when it could not be written, which only costs the
 * next command the work the file would have saved; it never throws.
 */
export function writeCacheFile(target: string, text: string): boolean {
  const temporary = `${target}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  try {
    mkdirSync(path.dirname(target), { recursive: true, mode: 0o700 });
    writeFileSync(temporary, text, { mode: 0o600 });
    renameSync(temporary, target);
    return true;
  } catch {
    try {
      unlinkSync(temporary);
    } catch {
      // Nothing was written.
    }
    return false;
  }
}
