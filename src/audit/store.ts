import path from 'node:path';
import type { KeyObject } from 'node:crypto';
import type { Logger } from '../logger.js';
import type { ChainAnchor } from './anchor.js';
import { parseEntryLine } from './entry.js';
import { appendLineDurably, readFirstLine } from './jsonl.js';
import { loadPublicKeys, publishPublicKey, type PublicKeySet } from './keys.js';
import { withAuditLock } from './lock.js';
import { auditLogPath, readLineAt, readLines, readLinesBackward, type RawLine } from './read.js';
import { readHead } from './append.js';
import type { AuditEntry } from './types.js';

/**
 * Where a reader stopped: after entry `seq`, whose line ends at byte `end` and is `bytes` long
 * with its newline (audit.jsonl; an evidence database finds entries by seq and ignores both).
 */
export interface StorePosition {
  readonly seq: number;
  readonly end: number;
  readonly bytes: number;
}

/** A signed entry and its exact canonical line, as signEntry returns it. */
export interface SignedLine<B> {
  readonly entry: AuditEntry<B>;
  readonly line: string;
  /** Entry 1's signer: the store publishes it with the entry, so verify can start the chain. */
  readonly genesisKey?: KeyObject;
}

/**
 * Where the chain lives: audit.jsonl in the evidence directory (the default), or one chain
 * per target database in a shared evidence database (store-pg.ts). Chosen once from config
 * (configureEvidenceStore); every writer and reader goes through this, so the canonical
 * lines, hashes and signatures are the same bytes in either store.
 */
export interface EvidenceStore {
  readonly kind: 'file' | 'database';
  /** For messages: the audit.jsonl path, or the evidence database (no password) and the target's chain. */
  readonly where: string;
  /**
   * The lines in chain order, or those after `after`. `keysOnly` is a hint for readers that
   * only want entry 1 and the key entries (a store may skip the rest; a reader must still filter).
   */
  readLines(options?: { readonly keysOnly?: boolean; readonly after?: StorePosition }): AsyncGenerator<RawLine>;
  /** The line stored at `at`, or null when there is none: what a reader resuming there checks first. */
  lineAt(at: StorePosition): Promise<string | null>;
  /** The lines newest first. */
  readLinesBackward(): AsyncGenerator<string>;
  /** The last entry, or null for an empty chain; refuses (exit 5) a damaged tail. */
  head(): Promise<AuditEntry | null>;
  /** Hash of entry 1 (the log id), or null for an empty chain. */
  logId(): Promise<string | null>;
  /**
   * The one write: with every other writer shut out, give `sign` the head and the store's
   * time, write the line it returns durably, then run `afterWrite`, still shut out.
   */
  append<B>(
    sign: (head: AuditEntry | null, now: Date) => Promise<SignedLine<B>>,
    log: Logger,
    afterWrite?: (entry: AuditEntry<B>) => Promise<void>,
  ): Promise<AuditEntry<B>>;
  /** The keys published with entry 1 of a chain (keys/ beside the file, or the store's key table). */
  publishedKeys(): Promise<PublicKeySet>;
  /** A database store's own chain head, which verify holds the chain to; null for the file. */
  anchor(): ChainAnchor | null;
}

/** audit.jsonl and keys/ in one directory; `file` defaults to <evidenceDir>/audit.jsonl. */
export function fileStore(evidenceDir: string, file: string = auditLogPath(evidenceDir)): EvidenceStore {
  return {
    kind: 'file',
    where: file,
    readLines: (options) => readLines(file, options?.after ? { offset: options.after.end, line: options.after.seq + 1 } : undefined),
    lineAt: (at) => readLineAt(file, at),
    readLinesBackward: () => readLinesBackward(file),
    head: async () => (await readHead(file)).head,
    logId: async () => {
      const first = await readFirstLine(file);
      return first ? parseEntryLine(first).hash : null;
    },
    append: (sign, log, afterWrite) =>
      withAuditLock(file, log, async () => {
        const { head, size } = await readHead(file);
        const { entry, line, genesisKey } = await sign(head, new Date());
        if (genesisKey) await publishPublicKey(evidenceDir, genesisKey);
        await appendLineDurably(file, line, size);
        await afterWrite?.(entry);
        return entry;
      }),
    publishedKeys: () => loadPublicKeys(evidenceDir),
    anchor: () => null,
  };
}

/**
 * The store of each evidence directory, set by the command layer from config `evidence.store`
 * (like the witnesses), so that every reader and writer, the guarded run included, uses it
 * without each call site passing it through. Unset: the file store.
 */
const configured = new Map<string, EvidenceStore>();

export function configureEvidenceStore(evidenceDir: string, store: EvidenceStore | null): void {
  if (store) configured.set(path.resolve(evidenceDir), store);
  else configured.delete(path.resolve(evidenceDir));
}

export function evidenceStore(evidenceDir: string): EvidenceStore {
  return configured.get(path.resolve(evidenceDir)) ?? fileStore(evidenceDir);
}
