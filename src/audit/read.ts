import path from 'node:path';
import { errorMessage, ExitCode, SafeRunError } from '../errors.js';
import { parseEntryLine } from './entry.js';
import { auditFailure, openAuditFile } from './jsonl.js';
import type { Logger } from '../logger.js';
import { parseRecord, type AuditRecord } from '../records/index.js';
import { evidenceStore, type StorePosition } from './store.js';
import type { AuditEntry } from './types.js';

export function auditLogPath(evidenceDir: string): string {
  return path.join(evidenceDir, 'audit.jsonl');
}

/** No log yet is an empty log, not an error. Not `instanceof Error`: fs errors may come from another realm (jest's vm). */
function isMissingFile(error: unknown): boolean {
  return typeof error === 'object' && error !== null && 'code' in error && error.code === 'ENOENT';
}

export interface RawLine {
  readonly text: string;
  /** 1-based. */
  readonly line: number;
  /** False only for a last line with no newline after it: a write that was cut short. */
  readonly terminated: boolean;
  /** Byte offset just past the line's newline in audit.jsonl (0 in an evidence database): where the next read can start. */
  readonly end?: number;
}

/** Where readLines starts: a byte offset at the start of a line, and that line's number. */
export interface LinePosition {
  readonly offset: number;
  readonly line: number;
}

/** The log opened for reading, or null when there is none yet. */
async function openForReading(file: string): Promise<Awaited<ReturnType<typeof openAuditFile>> | null> {
  try {
    return await openAuditFile(file, 'read');
  } catch (error) {
    if (isMissingFile(error)) return null;
    if (error instanceof SafeRunError) throw error;
    throw auditFailure(`Cannot read the audit log ${file}`, error);
  }
}

/**
 * The lines of a file in constant memory (bounded by the longest line). Splits on "\n"
 * only, unlike readline, so a "\r" added to a line stays part of it and fails its hash.
 */
export async function* readLines(file: string, from: LinePosition = { offset: 0, line: 1 }): AsyncGenerator<RawLine> {
  const handle = await openForReading(file);
  if (!handle) return;
  const stream = handle.createReadStream({ highWaterMark: 1 << 20, start: from.offset });
  let carry: Buffer[] = [];
  let line = from.line - 1;
  let read = from.offset;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let start = 0;
      for (let nl = chunk.indexOf(0x0a); nl >= 0; nl = chunk.indexOf(0x0a, start)) {
        const piece = chunk.subarray(start, nl);
        const bytes = carry.length ? Buffer.concat([...carry, piece]) : piece;
        carry = [];
        yield { text: bytes.toString('utf8'), line: ++line, terminated: true, end: read + nl + 1 };
        start = nl + 1;
      }
      if (start < chunk.length) carry.push(chunk.subarray(start));
      read += chunk.length;
    }
  } catch (error) {
    if (isMissingFile(error) && line === from.line - 1) return;
    throw auditFailure(`Cannot read the audit log ${file}`, error);
  } finally {
    stream.destroy();
  }
  if (carry.length) yield { text: Buffer.concat(carry).toString('utf8'), line: ++line, terminated: false };
}

/**
 * The lines of a file from the last to the first, reading 1 MiB blocks backwards: what
 * happened most recently costs the same however long the history is.
 */
export async function* readLinesBackward(file: string): AsyncGenerator<string> {
  const handle = await openForReading(file);
  if (!handle) return;
  try {
    const block = 1 << 20;
    let position = (await handle.stat()).size;
    let tail: Buffer = Buffer.alloc(0);
    while (position > 0) {
      const size = Math.min(block, position);
      position -= size;
      const chunk = Buffer.alloc(size);
      await handle.read(chunk, 0, size, position);
      let buffer = Buffer.concat([chunk, tail]);
      // Each pass takes the line after the last newline that is not the buffer's own last byte.
      for (;;) {
        const nl = buffer.length >= 2 ? buffer.lastIndexOf(0x0a, buffer.length - 2) : -1;
        if (nl < 0) break;
        const text = buffer
          .subarray(nl + 1)
          .toString('utf8')
          .replace(/\n$/, '');
        if (text) yield text;
        buffer = buffer.subarray(0, nl + 1);
      }
      tail = buffer;
    }
    const first = tail.toString('utf8').replace(/\n$/, '');
    if (first) yield first;
  } finally {
    await handle.close();
  }
}

/** Envelopes newest first (see readLinesBackward); same checks as readRawEntries. */
export async function* readRawEntriesBackward(evidenceDir: string): AsyncGenerator<AuditEntry> {
  const store = evidenceStore(evidenceDir);
  for await (const text of store.readLinesBackward()) yield parseOrFail(store.where, text, 'near the end');
}

/**
 * Every entry of the evidence store (audit.jsonl, or the target's chain in an evidence
 * database) in chain order, body not yet read: for what works on the chain
 * itself (hashes, keys, witnesses), where an entry counts whatever its body says. It checks
 * shape, not signatures (that is `verifyLog`): a line that is not an entry stops the read.
 */
export async function* readRawEntries(evidenceDir: string, options?: { readonly keysOnly?: boolean }): AsyncGenerator<AuditEntry> {
  const store = evidenceStore(evidenceDir);
  for await (const raw of store.readLines(options)) yield parseOrFail(store.where, raw.text, `line ${raw.line}`);
}

/** An entry and where a reader resuming after it starts (null for a line cut short: no resuming there). */
export interface PlacedEntry {
  readonly entry: AuditEntry;
  readonly place: StorePosition | null;
}

/** readRawEntries with each entry's place, all of them or those after `after`. For check's checkpoint. */
export async function* readPlacedEntries(evidenceDir: string, after: StorePosition | null): AsyncGenerator<PlacedEntry> {
  const store = evidenceStore(evidenceDir);
  let start = after?.end ?? 0;
  for await (const raw of store.readLines(after ? { after } : undefined)) {
    const entry = parseOrFail(store.where, raw.text, `line ${raw.line}`);
    const end = raw.end ?? 0;
    yield { entry, place: raw.terminated ? { seq: entry.seq, end, bytes: end - start } : null };
    start = end;
  }
}

/**
 * The line of audit.jsonl in the byte range `at` names, without its newline, or null when
 * the range does not hold one whole line. Never throws.
 */
export async function readLineAt(file: string, at: StorePosition): Promise<string | null> {
  const start = at.end - at.bytes;
  if (start < 0 || at.bytes < 2) return null;
  const handle = await openForReading(file).catch(() => null);
  if (!handle) return null;
  try {
    // One byte before the line too: it must be a newline (or the file's start), or the range is not a line.
    const from = Math.max(0, start - 1);
    const bytes = Buffer.alloc(at.end - from);
    const { bytesRead } = await handle.read(bytes, 0, bytes.length, from);
    if (bytesRead !== bytes.length || bytes[bytes.length - 1] !== 0x0a || (start > 0 && bytes[0] !== 0x0a)) return null;
    return bytes.subarray(start - from, bytes.length - 1).toString('utf8');
  } catch {
    return null;
  } finally {
    await handle.close();
  }
}

/** An entry a typed reader passed over: its body is not what its kind says, or its kind is newer than this safe-run. */
export interface SkippedEntry {
  readonly entry: AuditEntry;
  readonly reason: 'unknown-kind' | 'bad-body';
  readonly detail: string;
}

/** Each typed reader says what it does with a skipped entry; `warnSkipped` is the usual answer. */
export type OnSkipped = (skipped: SkippedEntry) => void;

/**
 * Every entry of audit.jsonl whose body parses for its kind, in file order, for `show`,
 * `blame`, `check` and friends. A body that does not parse is not a crash: the readers go on
 * without it, and `verify` names it (reason `bad-body`).
 */
export async function* readEntries(evidenceDir: string, onSkipped: OnSkipped = ignoreSkipped): AsyncGenerator<AuditRecord> {
  for await (const entry of readRawEntries(evidenceDir)) {
    const record = recordOrSkip(entry, onSkipped);
    if (record) yield record;
  }
}

/** Typed entries newest first (see readEntries). */
export async function* readEntriesBackward(evidenceDir: string, onSkipped: OnSkipped = ignoreSkipped): AsyncGenerator<AuditRecord> {
  for await (const entry of readRawEntriesBackward(evidenceDir)) {
    const record = recordOrSkip(entry, onSkipped);
    if (record) yield record;
  }
}

export function recordOrSkip(entry: AuditEntry, onSkipped: OnSkipped): AuditRecord | null {
  const parsed = parseRecord(entry);
  if (parsed.ok) return parsed.record;
  onSkipped({ entry, reason: parsed.reason, detail: parsed.detail });
  return null;
}

/** For readers that only look for one thing (a run's intent to restore): a skipped entry cannot be it. */
export const ignoreSkipped: OnSkipped = () => {};

/** A reader's warning for a skipped entry; the evidence it held is missing from what the command prints. */
export function warnSkipped(log: Pick<Logger, 'warn'>): OnSkipped {
  return ({ entry, reason, detail }) =>
    log.warn(`audit entry ${entry.seq} skipped: ${detail}; run \`safe-run verify\``, { seq: entry.seq, kind: entry.kind, reason });
}

function parseOrFail(file: string, text: string, where: string): AuditEntry {
  try {
    return parseEntryLine(text);
  } catch (error) {
    if (error instanceof SafeRunError) throw error;
    throw new SafeRunError(
      `${file} ${where}: not a valid audit entry: ${errorMessage(error)}`,
      ExitCode.auditFailed,
      'Run `safe-run verify` to see whether the log was damaged or tampered with.',
      { cause: error },
    );
  }
}
