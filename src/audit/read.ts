import { createReadStream } from 'node:fs';
import path from 'node:path';
import { ExitCode, SafeRunError } from '../errors.js';
import { parseEntryLine } from './entry.js';
import { auditFailure } from './jsonl.js';
import type { AuditEntry } from './types.js';

export function auditLogPath(evidenceDir: string): string {
  return path.join(evidenceDir, 'audit.jsonl');
}

export interface RawLine {
  readonly text: string;
  /** 1-based. */
  readonly line: number;
  /** False only for a last line with no newline after it: a write that was cut short. */
  readonly terminated: boolean;
}

/**
 * The lines of a file in constant memory (bounded by the longest line). Splits on "\n"
 * only, unlike readline, so a "\r" added to a line stays part of it and fails its hash.
 */
export async function* readLines(file: string): AsyncGenerator<RawLine> {
  const stream = createReadStream(file, { highWaterMark: 1 << 20 });
  let carry: Buffer[] = [];
  let line = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let start = 0;
      for (let nl = chunk.indexOf(0x0a); nl >= 0; nl = chunk.indexOf(0x0a, start)) {
        const piece = chunk.subarray(start, nl);
        const bytes = carry.length ? Buffer.concat([...carry, piece]) : piece;
        carry = [];
        yield { text: bytes.toString('utf8'), line: ++line, terminated: true };
        start = nl + 1;
      }
      if (start < chunk.length) carry.push(chunk.subarray(start));
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' && line === 0) return;
    throw auditFailure(`Cannot read the audit log ${file}`, error);
  } finally {
    stream.destroy();
  }
  if (carry.length) yield { text: Buffer.concat(carry).toString('utf8'), line: ++line, terminated: false };
}

/**
 * Every entry of audit.jsonl, in file order, for `show`, `blame`, `check` and friends.
 * It checks shape, not signatures (that is `verifyLog`), and it skips nothing: a line that
 * is not an entry stops the read with its line number.
 */
export async function* readEntries(evidenceDir: string): AsyncGenerator<AuditEntry> {
  const file = auditLogPath(evidenceDir);
  for await (const raw of readLines(file)) {
    try {
      yield parseEntryLine(raw.text);
    } catch (error) {
      if (error instanceof SafeRunError) throw error;
      throw new SafeRunError(
        `${file} line ${raw.line}: not a valid audit entry: ${(error as Error).message}`,
        ExitCode.auditFailed,
        'Run `safe-run verify` to see whether the log was damaged or tampered with.',
        { cause: error },
      );
    }
  }
}
