import { constants as fsConstants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { ExitCode, SafeRunError, errorCode } from '../errors.js';
import { EVIDENCE_FILE_MODE } from './modes.js';

/**
 * The two ends of audit.jsonl and a durable append. The appender only ever needs the last
 * line (for seq and prev) and the first (for the log id), so neither reads the whole file:
 * a years-old log costs the same to append to as a new one.
 */

const CHUNK = 64 * 1024;
const NEWLINE = 0x0a;

export interface LastLine {
  readonly text: string;
  /** False when a write was cut short: the file does not end with a newline. */
  readonly complete: boolean;
  /** File size, the offset to truncate back to when an append fails. */
  readonly size: number;
}

/** The last line, read backwards from the end in chunks; null for a missing or empty file. */
export async function readLastLine(file: string): Promise<LastLine | null> {
  const handle = await openIfExists(file);
  if (!handle) return null;
  try {
    return await readLastLineOf(handle);
  } catch (error) {
    throw auditFailure(`Cannot read the audit log ${file}`, error);
  } finally {
    await handle.close();
  }
}

async function readLastLineOf(handle: FileHandle): Promise<LastLine | null> {
  const size = (await handle.stat()).size;
  if (size === 0) return null;
  const chunks: Buffer[] = [];
  let end = size;
  let complete = false;
  for (let pos = size; pos > 0;) {
    const start = Math.max(0, pos - CHUNK);
    const chunk = Buffer.alloc(pos - start);
    await handle.read(chunk, 0, chunk.length, start);
    if (pos === size) {
      complete = chunk[chunk.length - 1] === NEWLINE;
      if (complete) end = size - 1;
    }
    // The terminating newline of the last line is excluded by searching below `end`.
    const searchTo = Math.min(chunk.length, end - start) - 1;
    const nl = searchTo >= 0 ? chunk.lastIndexOf(NEWLINE, searchTo) : -1;
    if (nl >= 0) {
      chunks.unshift(chunk.subarray(nl + 1, end - start));
      return { text: Buffer.concat(chunks).toString('utf8'), complete, size };
    }
    chunks.unshift(chunk.subarray(0, end - start));
    end = start;
    pos = start;
  }
  return { text: Buffer.concat(chunks).toString('utf8'), complete, size };
}

/** The first line, read forwards until its newline; null for a missing or empty file. */
export async function readFirstLine(file: string): Promise<string | null> {
  const handle = await openIfExists(file);
  if (!handle) return null;
  try {
    const chunks: Buffer[] = [];
    for (let pos = 0; ;) {
      const chunk = Buffer.alloc(CHUNK);
      const { bytesRead } = await handle.read(chunk, 0, CHUNK, pos);
      if (bytesRead === 0) break;
      const nl = chunk.subarray(0, bytesRead).indexOf(NEWLINE);
      if (nl >= 0) {
        chunks.push(chunk.subarray(0, nl));
        break;
      }
      chunks.push(chunk.subarray(0, bytesRead));
      pos += bytesRead;
    }
    const text = Buffer.concat(chunks).toString('utf8');
    return text === '' ? null : text;
  } finally {
    await handle.close();
  }
}

/**
 * The whole line, then fsync, so the entry is on disk before the caller moves
 * on (the outcome entry must be durable before COMMIT). A failed write is cut back to
 * `size` so that a full disk never leaves half a line for the next append to trip on.
 */
export async function appendLineDurably(file: string, line: string, size: number): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await openAuditFile(file, 'append');
    // A nearly full disk can take part of a write without an error: keep writing until the
    // whole line is down or the filesystem says why not (ENOSPC), never leave half a line.
    const data = Buffer.from(`${line}\n`, 'utf8');
    for (let offset = 0; offset < data.length;) {
      const { bytesWritten } = await handle.write(data, offset, data.length - offset);
      if (bytesWritten === 0) throw Object.assign(new Error('no space left on device (the write made no progress)'), { code: 'ENOSPC' });
      offset += bytesWritten;
    }
    await handle.sync();
  } catch (error) {
    if (handle) await handle.truncate(size).catch(() => {});
    if (error instanceof SafeRunError) throw error;
    throw auditFailure(`Cannot append to the audit log ${file}`, error);
  } finally {
    await handle?.close().catch(() => {});
  }
  if (size === 0) await fsyncDir(path.dirname(file));
}

/** A new directory entry is only durable once its directory is synced. */
export async function fsyncDir(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // Some filesystems refuse fsync on a directory; the file itself is already synced.
  } finally {
    await handle?.close().catch(() => {});
  }
}

/** Exit 5 with the path, the OS error and what to do about it. */
export function auditFailure(what: string, error: unknown): SafeRunError {
  const e = error as NodeJS.ErrnoException;
  // Node's own messages already start with the code ("ENOSPC: no space left…").
  const reason = e.code && !String(e.message).startsWith(e.code) ? `${e.code}: ${e.message}` : String(e?.message ?? error);
  const hint =
    e.code === 'ENOSPC'
      ? 'Free disk space on that filesystem, then run `safe-run verify`.'
      : e.code === 'EACCES' || e.code === 'EPERM' || e.code === 'EROFS'
        ? 'Make the evidence directory writable for this user (or set SAFE_RUN_EVIDENCE_DIR / "evidenceDir"), then run `safe-run verify`.'
        : e.code === 'ENOTDIR' || e.code === 'EEXIST'
          ? 'A file is in the way of the evidence directory path; point "evidenceDir" (or SAFE_RUN_EVIDENCE_DIR) at a directory.'
          : 'Check the evidence directory, then run `safe-run verify`.';
  return new SafeRunError(`${what}: ${reason}`, ExitCode.auditFailed, hint, { cause: error });
}

/** The log holds users' data and who did what: owner only, like the private key. */
export const AUDIT_FILE_MODE = EVIDENCE_FILE_MODE;
const { O_RDONLY, O_WRONLY, O_APPEND, O_CREAT, O_NOFOLLOW } = fsConstants;

/**
 * Every open of audit.jsonl goes through here, with O_NOFOLLOW: a symlink in its place
 * could send the appends somewhere nobody verifies, or make verify read another log.
 */
export async function openAuditFile(file: string, how: 'read' | 'append'): Promise<FileHandle> {
  const flags = how === 'read' ? O_RDONLY | O_NOFOLLOW : O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW;
  try {
    return await open(file, flags, AUDIT_FILE_MODE);
  } catch (error) {
    if (errorCode(error) !== 'ELOOP') throw error;
    throw new SafeRunError(
      `The audit log ${file} is a symbolic link; safe-run never follows one (the log could be anywhere, or be another log).`,
      ExitCode.auditFailed,
      `Find out who replaced it (\`ls -l ${file}\`); put the real log file back in its place, then run \`safe-run verify\`.`,
      { cause: error },
    );
  }
}

async function openIfExists(file: string): Promise<FileHandle | null> {
  try {
    return await openAuditFile(file, 'read');
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return null;
    if (error instanceof SafeRunError) throw error;
    throw auditFailure(`Cannot read the audit log ${file}`, error);
  }
}
