import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  declarationsCacheDir,
  declarationsKey,
  readCachedDeclarations,
  writeCachedDeclarations,
  type ScriptDeclarations,
} from './declarations-cache.js';
import { loadScriptFiles, type ScriptLoadOptions } from './load.js';

export type { ScriptDeclarations } from './declarations-cache.js';

export interface DescribeOptions extends ScriptLoadOptions {
  /** Default: declarationsCacheDir(). */
  readonly cacheDir?: string;
}

/**
 * The declarations of several scripts, for `list` and for the critical tables `snapshot` and
 * `check` watch: from the cache when the script (and, for TypeScript, its directory) is
 * unchanged since it was last read, otherwise read for real (the sandboxed child, the SQL
 * policy) and cached. A script that fails to load is returned as its error, never cached,
 * so it is read again next time.
 */
export async function describeScriptFiles(
  files: readonly string[],
  options: DescribeOptions = {},
): Promise<(ScriptDeclarations | Error)[]> {
  const cacheDir = options.cacheDir ?? declarationsCacheDir();
  // Taken once per call: an edit made after this command started is the next command's miss.
  const fingerprints = new Map<string, string | null>();
  const read = files.map((file) => {
    try {
      const sha256 = createHash('sha256').update(readFileSync(file, 'utf8')).digest('hex');
      return { key: declarationsKey(file, sha256, fingerprints), sha256 };
    } catch {
      // Unreadable: the real load below reports why.
      return { key: null, sha256: null };
    }
  });
  const keys = read.map((r) => r.key);
  const results: (ScriptDeclarations | Error | undefined)[] = files.map((file, i) =>
    keys[i] ? (readCachedDeclarations(cacheDir, file, keys[i]) ?? undefined) : undefined,
  );
  const missed = results.flatMap((result, i) => (result === undefined ? [i] : []));
  if (missed.length) {
    const loaded = await loadScriptFiles(
      missed.map((i) => files[i]!),
      options,
    );
    missed.forEach((fileIndex, j) => {
      const script = loaded[j]!;
      results[fileIndex] = script;
      const key = keys[fileIndex];
      // Only what was read from the very text the key was made of: a file edited in between
      // is read again next time rather than cached under the other text's key.
      if (!(script instanceof Error) && key && script.sha256 === read[fileIndex]!.sha256) {
        writeCachedDeclarations(cacheDir, files[fileIndex]!, key, script);
      }
    });
  }
  return results as (ScriptDeclarations | Error)[];
}
