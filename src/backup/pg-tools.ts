import { execa } from 'execa';
import { existsSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { ExitCode, SafeRunError } from '../errors.js';
import { candidateBinDirs } from './pg-bin-dirs.js';

export type PgTool = 'pg_dump' | 'pg_restore';

export interface ResolvedPgTool {
  readonly path: string;
  /** As the program reports it, e.g. "15.18". */
  readonly version: string;
  readonly major: number;
}

/**
 * Finds a pg_dump or pg_restore that can read the server: its major version must be the
 * server's or newer (SPEC "Facts measured"). Debian puts a wrapper on PATH and the real
 * programs under /usr/lib/postgresql/<major>/bin, so an old client on PATH does not hide a
 * newer one there. The first candidate that fits wins, so a configured directory is
 * preferred when it fits.
 *
 * `searchDirs` replaces the default candidate list (the configured dir alone, else PATH and the Debian dirs);
 * tests use it to see what happens when nothing fits.
 */
export async function resolvePgTool(
  tool: PgTool,
  serverMajor: number,
  configuredDir?: string | null,
  // A configured directory is the operator's explicit choice: never fall back past it.
  searchDirs: readonly string[] = configuredDir ? [configuredDir] : candidateBinDirs(),
): Promise<ResolvedPgTool> {
  const found: ResolvedPgTool[] = [];
  // Debian's pg_wrapper on PATH is a Perl script that starts one of /usr/lib/postgresql/*/bin,
  // which are candidates too: they go first, so no run pays a Perl start-up (tens of ms) for
  // every pg_dump, pg_restore and version probe. The wrapper stays as the last resort.
  const dirs = [
    ...searchDirs.filter((d) => !isDebianWrapper(path.join(d, tool))),
    ...searchDirs.filter((d) => isDebianWrapper(path.join(d, tool))),
  ];
  for (const dir of dirs) {
    const bin = path.join(dir, tool);
    if (!isFile(bin)) continue;
    const version = await readVersion(bin);
    if (!version) continue;
    if (version.major >= serverMajor) return version;
    found.push(version);
  }
  const seen = found.length ? found.map((f) => `${f.path} (${f.version})`).join(', ') : 'none';
  throw new SafeRunError(
    `No ${tool} of version ${serverMajor} or newer for this PostgreSQL ${serverMajor} server. Found: ${seen}.`,
    ExitCode.backupFailed,
    `Install the client programs of version ${serverMajor} or newer (Debian/Ubuntu: apt-get install postgresql-client-${serverMajor}), or set "pgBinDir" in the config to a directory that holds them.`,
  );
}

/** "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)" -> 15.18 / 15; "9.6.0" -> 9. */
export function parsePgVersion(output: string): { version: string; major: number } | null {
  const match = /\(PostgreSQL\)\s+(\d+)((?:\.\d+)*)/.exec(output);
  if (!match) return null;
  return { version: `${match[1]}${match[2] ?? ''}`, major: Number(match[1]) };
}

const versionCache = new Map<string, ResolvedPgTool | null>();

async function readVersion(bin: string): Promise<ResolvedPgTool | null> {
  if (versionCache.has(bin)) return versionCache.get(bin)!;
  // No inherited environment: `--version` needs none, and a stray PG* variable must not matter.
  const result = await execa(bin, ['--version'], {
    reject: false,
    timeout: 10_000,
    extendEnv: false,
    env: { PATH: process.env.PATH ?? '' },
  });
  const parsed = result.exitCode === 0 ? parsePgVersion(String(result.stdout)) : null;
  const resolved = parsed ? { path: bin, ...parsed } : null;
  versionCache.set(bin, resolved);
  return resolved;
}

function isDebianWrapper(bin: string): boolean {
  try {
    return path.basename(realpathSync(bin)) === 'pg_wrapper';
  } catch {
    return false;
  }
}

function isFile(bin: string): boolean {
  return existsSync(bin) && statSync(bin).isFile();
}
