import { createPublicKey } from 'node:crypto';
import { ExitCode, SafeRunError } from '../errors.js';
import type { Logger } from '../logger.js';
import { MalformedEntryError, parseEntryLine, signEntry } from './entry.js';
import { readLastLine } from './jsonl.js';
import type { SigningKey } from './keys.js';
import { evidenceStore } from './store.js';
import { GENESIS_PREV, type AuditEntry, type EntryKind } from './types.js';
import type { KeyRotateBody, RecordBody } from '../records/index.js';

/** `body` is the record type of `kind` (src/records): a body of the wrong shape does not compile. */
export interface AppendRequest<K extends EntryKind> {
  readonly evidenceDir: string;
  readonly log: Logger;
  readonly kind: K;
  readonly body: RecordBody<K>;
  readonly runId?: string;
  /**
   * The key to sign with, given the key the log currently expects (null for a new log).
   * Called inside the lock, so a rotation by another process is already visible.
   */
  readonly chooseKey: (activeKeyId: string | null) => Promise<SigningKey>;
  /** Runs inside the lock right after the entry is durable (rotation installs its new key here). */
  readonly afterWrite?: (entry: AuditEntry<RecordBody<K>>) => Promise<void>;
}

/**
 * appendSignedEntry: with other writers shut out by the store (the lock file, or the chain
 * head's row lock), read the head, sign the next entry and write it durably. Only this
 * function writes entries.
 */
export async function appendSignedEntry<K extends EntryKind>(request: AppendRequest<K>): Promise<AuditEntry<RecordBody<K>>> {
  const store = evidenceStore(request.evidenceDir);
  return store.append(
    async (head, now) => {
      const key = await request.chooseKey(head ? activeKeyId(head) : null);
      const signed = signEntry(
        {
          seq: head ? head.seq + 1 : 1,
          prev: head ? head.hash : GENESIS_PREV,
          kind: request.kind,
          body: request.body,
          runId: request.runId,
          ts: nextTs(head, now),
        },
        key,
      );
      // The genesis key is the one whose public key is published with entry 1.
      return head ? signed : { ...signed, genesisKey: createPublicKey(key.privateKey) };
    },
    request.log,
    request.afterWrite,
  );
}

/** The entry the next one links to, or null for a new log. Refuses to build on a damaged tail. */
export async function readHead(file: string): Promise<{ head: AuditEntry | null; size: number }> {
  const last = await readLastLine(file);
  if (!last) return { head: null, size: 0 };
  if (!last.complete) {
    const keep = last.size - Buffer.byteLength(last.text);
    throw new SafeRunError(
      `${file} ends with an incomplete line (a write was cut short); refusing to append after it.`,
      ExitCode.auditFailed,
      `Run \`safe-run verify\`; if only that last partial line is bad, cut it off with \`truncate -s ${keep} ${file}\` (keep a copy first).`,
    );
  }
  try {
    return { head: parseEntryLine(last.text), size: last.size };
  } catch (error) {
    if (!(error instanceof MalformedEntryError)) throw error;
    throw new SafeRunError(
      `The last line of ${file} is not an audit entry (${error.message}); refusing to append after it.`,
      ExitCode.auditFailed,
      'Run `safe-run verify` to find out what happened to the log before writing to it again.',
    );
  }
}

/**
 * The store's now (this host's clock for the file, the evidence database's for a shared
 * store), or the head's ts when that clock went back (verify fails a log whose time goes backwards).
 */
function nextTs(head: AuditEntry | null, now: Date): string {
  const last = head ? Date.parse(head.ts) : Number.NaN;
  return !Number.isNaN(last) && last > now.getTime() ? head!.ts : now.toISOString();
}

/** Which key must sign the entry after `head`: its signer, or the key a rotation just introduced. */
export function activeKeyId(head: AuditEntry): string {
  if (head.kind === 'key.rotate') {
    const body = head.body as Partial<KeyRotateBody> | null;
    if (body && typeof body.newKeyId === 'string') return body.newKeyId;
  }
  return head.keyId;
}
