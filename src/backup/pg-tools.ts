import { execa } from 'execa';
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { z } from '../zod.js';
import { safeRunCacheDir, writeCacheFile } from '../cache-dir.js';
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
  for (const bin of candidatePaths(tool, searchDirs)) {
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

/**
 * The programs resolvePgTool tries, in order. Debian's pg_wrapper on PATH is a Perl script
 * that starts one of /usr/lib/postgresql/<major>/bin, which are candidates too: they go first, so
 * no run pays a Perl start-up (tens of ms) for every pg_dump, pg_restore and version probe.
 * The wrapper stays as the last resort.
 */
function candidatePaths(tool: PgTool, searchDirs: readonly string[]): string[] {
  const bins = searchDirs.map((d) => path.join(d, tool)).filter(isFile);
  return [...bins.filter((b) => !isDebianWrapper(b)), ...bins.filter(isDebianWrapper)];
}

/**
 * Starts the version probe resolvePgTool makes first for pg_dump and pg_restore, so that a
 * run's backup finds them answered: otherwise the two processes start between the exported
 * snapshot and pg_dump, and pg_dump waits for them (25-45 ms). Only the first candidate,
 * the one that fits on a usual install; resolvePgTool probes the others if it must.
 */
export function probePgToolsEarly(configuredDir?: string | null): void {
  const searchDirs = configuredDir ? [configuredDir] : candidateBinDirs();
  for (const tool of ['pg_dump', 'pg_restore'] as const) {
    const first = candidatePaths(tool, searchDirs)[0];
    if (first) void readVersion(first);
  }
}

/** One probe per program and process, shared by whoever asks while it runs. */
const versionCache = new Map<string, Promise<ResolvedPgTool | null>>();

function readVersion(bin: string): Promise<ResolvedPgTool | null> {
  let probe = versionCache.get(bin);
  if (!probe) {
    // Debian's pg_wrapper starts whichever client the installed packages and the cluster setup
    // name, so its own file does not tell its version: it is asked every time.
    const kept = !isDebianWrapper(bin);
    const known = kept ? knownVersion(bin) : null;
    probe = known
      ? Promise.resolve(known)
      : probeVersion(bin).then(
          (tool) => (kept ? rememberVersion(tool) : tool),
          () => null,
        );
    versionCache.set(bin, probe);
  }
  return probe;
}

/**
 * What each program's `--version` said, kept between commands in `pg-tools.json` of the
 * cache directory: asking pg_dump and pg_restore starts two processes, which cost a run about
 * 25 ms before its backup could start. An entry holds for the very file it was read from
 * (its real path, inode, size and modification time), so an upgraded or replaced program is
 * asked again. Only a convenience: a missing, stale or edited file costs a probe, and an
 * entry that lied about a version would meet pg_dump's own refusal of a server it cannot read.
 */
const versionEntry = z.object({ file: z.string(), version: z.string(), major: z.number().int() }).strict();
const versionFile = z.record(z.string(), versionEntry);
type VersionFile = z.infer<typeof versionFile>;

const versionFilePath = (): string => path.join(safeRunCacheDir(), 'pg-tools.json');

/** The program's file as the cache knows it; null if it cannot be read. */
function fileIdentity(bin: string): string | null {
  try {
    const real = realpathSync(bin);
    const stat = statSync(real);
    return `${real} ${stat.ino} ${stat.size} ${stat.mtimeMs}`;
  } catch {
    return null;
  }
}

function readVersionFile(): VersionFile {
  try {
    const parsed = versionFile.safeParse(JSON.parse(readFileSync(versionFilePath(), 'utf8')));
    return parsed.success ? parsed.data : {};
  } catch {
    return {};
  }
}

function knownVersion(bin: string): ResolvedPgTool | null {
  const entry = readVersionFile()[bin];
  const file = fileIdentity(bin);
  return entry && file !== null && entry.file === file ? { path: bin, version: entry.version, major: entry.major } : null;
}

/** Written whole and renamed into place; entries of programs that are gone are dropped. A failure only means asking next time. */
function rememberVersion(tool: ResolvedPgTool | null): ResolvedPgTool | null {
  const file = tool && fileIdentity(tool.path);
  if (!tool || !file) return tool;
  const kept = Object.entries(readVersionFile()).filter(([bin]) => bin !== tool.path && existsSync(bin));
  const entries: VersionFile = Object.fromEntries([...kept, [tool.path, { file, version: tool.version, major: tool.major }]]);
  writeCacheFile(versionFilePath(), `${JSON.stringify(entries)}\n`);
  return tool;
}

async function probeVersion(bin: string): Promise<ResolvedPgTool | null> {
  // No inherited environment: `--version` needs none, and a stray PG* variable must not matter.
  const result = await execa(bin, ['--version'], {
    reject: false,
    timeout: 10_000,
    extendEnv: false,
    env: { PATH: process.env.PATH ?? '' },
  });
  const parsed = result.exitCode === 0 ? parsePgVersion(String(result.stdout)) : null;
  return parsed ? { path: bin, ...parsed } : null;
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
