import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { errorMessage } from '../errors.js';
import type { LedgerSealBody } from '../records/index.js';
import type { SealedLine } from './seal.js';

/**
 * One sealed copy (`<evidenceDir>/ledger/*.jsonl`) read back: its sha256 is checked against
 * the signed `ledger.seal` entry before any line is used, so nothing in it counts unless it is
 * the file that was sealed. A copy holds every protected table's statements (10,000s of pgbench-style
 * UPDATEs on other tables), and `blame` of one table needs few of them: with `mentions`,
 * only the lines that hold one of those members are parsed, found by a byte search instead
 * of a JSON.parse per line.
 */
export interface CopyRead {
  readonly lines: SealedLine[];
  /** Null when the copy is intact. */
  readonly problem: string | null;
}

/** `["table_name", "users"]`: a line is wanted when its statement has that member with that string value. */
export type Mention = readonly [member: string, value: string];

const BLOCK = 4 << 20;

export async function readSealedCopy(evidenceDir: string, body: LedgerSealBody, mentions?: readonly Mention[]): Promise<CopyRead> {
  let read: { readonly sha256: string; readonly texts: readonly string[] };
  try {
    read = await scanCopy(path.join(evidenceDir, body.file), mentions);
  } catch (error) {
    return { lines: [], problem: `sealed copy ${body.file} cannot be read: ${errorMessage(error)}` };
  }
  if (read.sha256 !== body.fileSha256) return { lines: [], problem: `sealed copy ${body.file} differs from its signed sha256` };
  return { lines: read.texts.map((t) => JSON.parse(t) as SealedLine), problem: null };
}

/**
 * One pass in blocks: each block is hashed (the seal signed sha256 of the UTF-8 text it wrote,
 * so the bytes hash the same without decoding them) and searched, while the next block is
 * read. Memory stays at a block and the lines kept, however large the copy. A line that spans
 * two blocks is searched whole, so no needle is missed at a block boundary.
 */
async function scanCopy(file: string, mentions: readonly Mention[] | undefined): Promise<{ sha256: string; texts: string[] }> {
  const hash = createHash('sha256');
  const texts: string[] = [];
  let search: ((piece: Buffer) => string[]) | null = null;
  const take = (piece: Buffer): void => {
    // The first piece taken is the file's first line: it says whether the byte search applies.
    search ??= mentions && writtenByJsonStringify(piece) ? (b: Buffer) => linesMentioning(b, mentions) : allLines;
    for (const t of search(piece)) texts.push(t);
  };
  const handle = await open(file, 'r');
  let carry: Buffer[] = [];
  try {
    for await (const chunk of handle.createReadStream({ highWaterMark: BLOCK, autoClose: false }) as AsyncIterable<Buffer>) {
      hash.update(chunk);
      const first = chunk.indexOf(0x0a);
      if (first < 0) {
        carry.push(chunk);
        continue;
      }
      const last = chunk.lastIndexOf(0x0a);
      take(Buffer.concat([...carry, chunk.subarray(0, first + 1)]));
      if (last > first) take(chunk.subarray(first + 1, last + 1));
      carry = last + 1 < chunk.length ? [chunk.subarray(last + 1)] : [];
    }
  } finally {
    await handle.close();
  }
  if (carry.length) take(Buffer.concat(carry));
  return { sha256: hash.digest('hex'), texts };
}

function allLines(bytes: Buffer): string[] {
  return bytes.toString('utf8').split('\n').filter(Boolean);
}

/**
 * The byte search relies on the seal's own writer (JSON.stringify per line, seal.ts): no
 * whitespace, strings escaped as JSON.stringify escapes them. One writer wrote the whole
 * file, so when its first line prints back to itself the others are in the same form;
 * when not (another writer, some day), every line is parsed as before.
 */
function writtenByJsonStringify(bytes: Buffer): boolean {
  const end = bytes.indexOf(0x0a);
  const first = bytes.subarray(0, end < 0 ? bytes.length : end).toString('utf8');
  try {
    return JSON.stringify(JSON.parse(first)) === first;
  } catch {
    return false;
  }
}

/**
 * Lines holding `"member":"value"` for one of the mentions, in file order. A JSON string
 * cannot hold an unescaped quote, so the needle never matches inside a statement's text; a
 * match anywhere else is that member, and the caller still checks what it parsed.
 */
function linesMentioning(bytes: Buffer, mentions: readonly Mention[]): string[] {
  const starts = new Map<number, number>();
  for (const [member, value] of mentions) {
    const needle = Buffer.from(`${JSON.stringify(member)}:${JSON.stringify(value)}`);
    for (let at = bytes.indexOf(needle); at >= 0;) {
      const nl = bytes.indexOf(0x0a, at);
      const end = nl < 0 ? bytes.length : nl;
      starts.set(bytes.lastIndexOf(0x0a, at) + 1, end);
      at = nl < 0 ? -1 : bytes.indexOf(needle, end + 1);
    }
  }
  return [...starts]
    .sort((a, b) => a[0] - b[0])
    .map(([start, end]) => bytes.subarray(start, end).toString('utf8'))
    .filter(Boolean);
}
