import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';

/**
 * Where PostgreSQL's programs live. Debian keeps each major version under
 * /usr/lib/postgresql/<major>/bin and puts only wrappers on PATH, so we look there too,
 * highest version first.
 */
export interface PgBinaries {
  readonly binDir: string;
  readonly major: number | null;
}

const DEBIAN_ROOT = '/usr/lib/postgresql';

export function candidateBinDirs(configured?: string): string[] {
  const dirs: string[] = [];
  if (configured) dirs.push(configured);
  for (const entry of (process.env.PATH ?? '').split(path.delimiter)) if (entry) dirs.push(entry);
  dirs.push(...debianBinDirs());
  return [...new Set(dirs)];
}

/** /usr/lib/postgresql/<major>/bin, newest first. */
export function debianBinDirs(): string[] {
  if (!existsSync(DEBIAN_ROOT)) return [];
  return readdirSync(DEBIAN_ROOT)
    .filter((name) => /^\d+$/.test(name))
    .sort((a, b) => Number(b) - Number(a))
    .map((name) => path.join(DEBIAN_ROOT, name, 'bin'));
}

/** The first directory that has every program asked for. */
export function findBinDir(programs: readonly string[], configured?: string): PgBinaries | null {
  for (const dir of candidateBinDirs(configured)) {
    if (programs.every((p) => existsSync(path.join(dir, p)))) {
      const match = /postgresql\/(\d+)\/bin$/.exec(dir);
      return { binDir: dir, major: match ? Number(match[1]) : null };
    }
  }
  return null;
}
