import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { DumpTable } from './pg-dump-args.js';

/**
 * Reading an archive back: its table of contents through `pg_restore --list`, and the
 * sha256 of a directory-format archive.
 */

export interface TocEntry {
  readonly dumpId: number;
  /** TABLE, TABLE DATA, FK CONSTRAINT, SEQUENCE SET, ... */
  readonly type: string;
  /** The rest of the line: `schema name owner` for most types. */
  readonly rest: string;
  readonly line: string;
}

/** Entry types that are more than one word; the longest is tried first. */
const MULTI_WORD_TYPES = [
  'SEQUENCE OWNED BY',
  'TABLE DATA',
  'TABLE ATTACH',
  'FK CONSTRAINT',
  'SEQUENCE SET',
  'DEFAULT ACL',
  'LARGE OBJECT',
  'BLOB DATA',
  'MATERIALIZED VIEW DATA',
  'MATERIALIZED VIEW',
  'CHECK CONSTRAINT',
  'INDEX ATTACH',
  'FOREIGN TABLE',
  'TEXT SEARCH CONFIGURATION',
  'TEXT SEARCH DICTIONARY',
  'EVENT TRIGGER',
  'PUBLICATION TABLE',
  'POLICY',
];

export async function listArchive(pgRestore: string, archive: string, env: Record<string, string>): Promise<TocEntry[]> {
  const result = await execa(pgRestore, ['--list', archive], { env, extendEnv: false, reject: false, stdin: 'ignore' });
  if (result.exitCode !== 0) {
    throw new Error(`pg_restore --list failed: ${String(result.stderr).trim() || `exit ${result.exitCode}`}`);
  }
  return parseToc(String(result.stdout));
}

/** Lines look like `215; 1259 16386 TABLE public users postgres`; `;` starts a comment. */
export function parseToc(listing: string): TocEntry[] {
  const entries: TocEntry[] = [];
  for (const line of listing.split('\n')) {
    const match = /^(\d+);\s+\d+\s+\d+\s+(.*)$/.exec(line);
    if (!match) continue;
    const body = match[2]!;
    const type = MULTI_WORD_TYPES.find((t) => body.startsWith(`${t} `)) ?? body.slice(0, body.indexOf(' '));
    entries.push({ dumpId: Number(match[1]), type, rest: body.slice(type.length + 1), line });
  }
  return entries;
}

/**
 * Whether the TOC has an entry of `type` for the table. Names are printed unquoted, so
 * `schema name owner` is matched by prefix: a name with spaces still matches only itself.
 */
export function hasTableEntry(entries: readonly TocEntry[], type: 'TABLE' | 'TABLE DATA', table: DumpTable): boolean {
  const prefix = `${table.schema} ${table.name} `;
  return entries.some((e) => e.type === type && e.rest.startsWith(prefix));
}

/**
 * A directory-format archive has no single byte stream to hash. Its sha256 is, by
 * definition here, the sha256 of the `sha256sum`-style manifest of its files in byte
 * order of their names: one line `<hex sha256>  <file name>\n` per file. An operator can
 * check it with `cd <dir> && LC_ALL=C ls | xargs sha256sum | sha256sum`.
 */
export async function hashDirectory(dir: string): Promise<{ sha256: string; bytes: number }> {
  const names = (await readdir(dir)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const manifest = createHash('sha256');
  let bytes = 0;
  for (const name of names) {
    const file = path.join(dir, name);
    const info = await stat(file);
    if (!info.isFile()) continue;
    bytes += info.size;
    manifest.update(`${await hashFile(file)}  ${name}\n`);
  }
  return { sha256: manifest.digest('hex'), bytes };
}

/** The sha256 of one file, read as a stream. */
export async function hashFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
