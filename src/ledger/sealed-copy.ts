import { webcrypto } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { errorMessage } from '../errors.js';
import type { LedgerSealBody } from '../records/index.js';
import type { SealedLine } from './seal.js';

/**
 * One sealed copy (`<evidenceDir>/ledger/*.jsonl`) read back: its sha256 checked against the
 * signed `ledger.seal` entry first, so nothing in it is used unless it is the file that was
 * sealed. A copy holds every protected table's statements (10,000s of pgbench-style
 * UPDATEs on other tables), and `blame` of one table needs few of them: with `mentions`,
 * only the lines that hold one of those members are parsed, found by a byte search over the
 * whole file instead of a JSON.parse per line.
 */
export interface CopyRead {
  readonly lines: SealedLine[];
  /** Null when the copy is intact. */
  readonly problem: string | null;
}

/** `["table_name", "users"]`: a line is wanted when its statement has that member with that string value. */
export type Mention = readonly [member: string, value: string];

export async function readSealedCopy(evidenceDir: string, body: LedgerSealBody, mentions?: readonly Mention[]): Promise<CopyRead> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path.join(evidenceDir, body.file));
  } catch (error) {
    return { lines: [], problem: `sealed copy ${body.file} cannot be read: ${errorMessage(error)}` };
  }
  // The digest runs on libuv's thread pool while this thread searches the bytes; nothing
  // found is returned before the digest has matched.
  const digest = sha256OfBytes(bytes);
  const texts = mentions && writtenByJsonStringify(bytes) ? linesMentioning(bytes, mentions) : allLines(bytes);
  if ((await digest) !== body.fileSha256) return { lines: [], problem: `sealed copy ${body.file} differs from its signed sha256` };
  return { lines: texts.map((t) => JSON.parse(t) as SealedLine), problem: null };
}

/**
 * The seal signed sha256 of the text it wrote (UTF-8); hashing the bytes as read gives the same
 * digest for the same file without decoding 100 MB into a string and encoding it back.
 */
async function sha256OfBytes(bytes: Buffer): Promise<string> {
  return Buffer.from(await webcrypto.subtle.digest('SHA-256', bytes)).toString('hex');
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
