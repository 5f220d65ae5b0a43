import os from 'node:os';
import path from 'node:path';

/** `$XDG_CACHE_HOME/safe-run` (else `~/.cache/safe-run`): disposable answers kept between commands, outside the evidence. */
export function safeRunCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'safe-run');
}
