import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from '../zod.js';
import { safeRunCacheDir, writeCacheFile } from '../cache-dir.js';
import type { LoadedScript } from './load.js';

/**
 * What `list`, `snapshot` and `check` need of a script, without running anything: reading
 * it takes a sandboxed Node child (TypeScript) or PostgreSQL's grammar in WASM (SQL), about
 * a second of start-up, for an answer that only changes when the script does. A guarded run
 * never reads this cache: it reads the declarations in the child that runs the script.
 */
export type ScriptDeclarations = Pick<
  LoadedScript,
  'name' | 'description' | 'kind' | 'path' | 'sha256' | 'touches' | 'limits' | 'critical' | 'ddl'
>;

/** Bumped when ScriptDeclarations changes shape: older entries become misses. */
const FORMAT = 1;
/** A script directory larger than this is not fingerprinted, and its TypeScript scripts are never cached. */
const MAX_DIR_ENTRIES = 2000;

const operation = z.enum(['insert', 'update', 'delete', 'truncate', 'ddl']);
const cachedEntry = z.object({
  key: z.string(),
  declarations: z
    .object({
      name: z.string().min(1),
      description: z.string(),
      kind: z.enum(['ts', 'sql']),
      path: z.string(),
      sha256: z.string(),
      touches: z.record(z.string(), z.array(operation)),
      limits: z.record(z.string(), z.partialRecord(operation, z.number().int().nonnegative())),
      critical: z.array(z.string()),
      ddl: z.boolean(),
    })
    .strict(),
});

/** `$XDG_CACHE_HOME/safe-run/scripts` (else `~/.cache/...`): disposable, outside the evidence. */
export function declarationsCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(safeRunCacheDir(env), 'scripts');
}

/**
 * Everything the declarations are a function of. The source's sha256 (an edit is a new key),
 * its path (the name and the reported path come from it), this build of safe-run (the SQL
 * policy and the parser ship with it) and, for TypeScript, every file the script could import
 * from its directory: the sandboxed child reads nothing else but installed packages, so an
 * edited helper module (`touches: TABLES` from `./tables.ts`) is a new key too.
 * null: not cacheable (the directory is too large to fingerprint cheaply).
 */
export function declarationsKey(
  file: string,
  sourceSha256: string,
  /** Directory fingerprints already taken by this caller: 50 scripts in one directory walk it once. */
  fingerprints: Map<string, string | null> = new Map(),
): string | null {
  const absolute = path.resolve(file);
  const parts: unknown[] = [FORMAT, buildIdentity(), absolute, sourceSha256];
  if (!absolute.endsWith('.sql')) {
    const scriptDir = path.dirname(absolute);
    if (!fingerprints.has(scriptDir)) fingerprints.set(scriptDir, directoryFingerprint(scriptDir));
    const dir = fingerprints.get(scriptDir)!;
    if (dir === null) return null;
    parts.push(dir);
  }
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

/** The cached declarations for this key, or null: absent, for another key, or unreadable (corrupt entries are misses). */
export function readCachedDeclarations(cacheDir: string, file: string, key: string): ScriptDeclarations | null {
  try {
    const parsed = cachedEntry.safeParse(JSON.parse(readFileSync(entryPath(cacheDir, file), 'utf8')));
    return parsed.success && parsed.data.key === key ? parsed.data.declarations : null;
  } catch {
    return null;
  }
}

/**
 * One entry per script path, replaced when the script changes, so the cache never grows
 * past the scripts there are. Written whole and renamed into place: a reader sees the old
 * entry or the new one. A cache that cannot be written only costs the next command the parse.
 */
export function writeCachedDeclarations(cacheDir: string, file: string, key: string, declarations: ScriptDeclarations): void {
  if (!writeCacheFile(entryPath(cacheDir, file), JSON.stringify({ key, declarations: pick(declarations) }))) return;
  try {
    forgetVanishedScripts(cacheDir);
  } catch {
    // The next write prunes.
  }
}

/**
 * Past this many entries, those of scripts that no longer exist (a test's temporary
 * directory, a renamed script) are removed on the next write, so the cache stays the size of
 * the scripts there are.
 */
const PRUNE_ABOVE = 256;

function forgetVanishedScripts(cacheDir: string): void {
  const names = readdirSync(cacheDir).filter((name) => name.endsWith('.json'));
  if (names.length <= PRUNE_ABOVE) return;
  for (const name of names) {
    const file = path.join(cacheDir, name);
    try {
      const entry = JSON.parse(readFileSync(file, 'utf8')) as { declarations?: { path?: unknown } };
      const script = entry.declarations?.path;
      if (typeof script === 'string' && existsSync(script)) continue;
    } catch {
      // Unreadable: as good as vanished.
    }
    rmSync(file, { force: true });
  }
}

function entryPath(cacheDir: string, file: string): string {
  return path.join(cacheDir, `${createHash('sha256').update(path.resolve(file)).digest('hex').slice(0, 32)}.json`);
}

/** Only the declared fields: a LoadedScript also carries its source and its run function. */
function pick(d: ScriptDeclarations): ScriptDeclarations {
  const { name, description, kind, path: file, sha256, touches, limits, critical, ddl } = d;
  return { name, description, kind, path: file, sha256, touches, limits, critical, ddl };
}

let build: string | undefined;

/** This build of safe-run: every build rewrites its compiled files, so their mtime changes with it. */
function buildIdentity(): string {
  if (build === undefined) {
    const own = statSync(fileURLToPath(import.meta.url));
    build = `${own.mtimeMs}:${own.size}`;
  }
  return build;
}

/** Path, size and mtime of every file under `dir` (not node_modules, not dot entries); null when too many. */
function directoryFingerprint(dir: string): string | null {
  const entries: string[] = [];
  const walk = (current: string): boolean => {
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      if (entry.name.startsWith('.') || entry.name === 'node_modules') continue;
      const full = path.join(current, entry.name);
      if (entry.isDirectory()) {
        if (!walk(full)) return false;
        continue;
      }
      const st = statSync(full, { throwIfNoEntry: false });
      if (st) entries.push(`${path.relative(dir, full)}:${st.size}:${st.mtimeMs}`);
      if (entries.length > MAX_DIR_ENTRIES) return false;
    }
    return true;
  };
  try {
    return walk(dir) ? entries.sort().join('\n') : null;
  } catch {
    return null;
  }
}
