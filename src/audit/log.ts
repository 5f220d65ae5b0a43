import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { usageError, errorMessage } from '../errors.js';
import { silentLogger, type Logger } from '../logger.js';
import { bothSettled } from '../settled.js';
import { evidenceDirIdentity, type ChainAnchor } from './anchor.js';
import { assertWritableAgainstAnchor } from './anchor-check.js';
import { activeKeyId, appendSignedEntry } from './append.js';
import { auditFailure } from './jsonl.js';
import { EVIDENCE_DIR_MODE } from './modes.js';
import { loadSigningKey, type SigningKey } from './keys.js';
import { activeSigners } from './signers.js';
import { evidenceStore } from './store.js';
import { configuredWitnesses, notifyWitnesses, witnessedHead, type Witness } from './witness.js';
import type { RecordBody } from '../records/index.js';
import type { AuditEntry, EntryKind } from './types.js';

export { databaseAnchor, type ChainAnchor } from './anchor.js';
export { auditLogPath, readEntries } from './read.js';

/** What the guarded run, `snapshot`, `exec` and `restore` write through. */
export interface AuditLog {
  /** Resolves once the entry is fsync'ed; the chain-head anchor is updated after that, best effort. */
  append<K extends EntryKind>(kind: K, body: RecordBody<K>, options?: { runId?: string }): Promise<AuditEntry<RecordBody<K>>>;
}

export interface OpenAuditLogOptions {
  readonly evidenceDir: string;
  readonly signingKeyPath: string;
  readonly anchor?: ChainAnchor | null;
  readonly log?: Logger;
  /** Default: the witnesses the command layer configured for this evidence directory (configureWitnesses). */
  readonly witnesses?: readonly Witness[];
}

/**
 * Loads and checks the key and the log's head up front, so a missing key (exit 2) or an
 * unwritable evidence directory (exit 5) stops a run before it has done anything.
 */
export async function openAuditLog(options: OpenAuditLogOptions): Promise<AuditLog> {
  const { evidenceDir, signingKeyPath } = options;
  const log = options.log ?? silentLogger;
  const store = evidenceStore(evidenceDir);
  const file = store.where;
  // A shared store's chain head is the anchor (in its own database, beyond a DROP DATABASE of the target).
  const targetAnchor = store.kind === 'file' ? (options.anchor ?? null) : null;
  // The key and the anchor are read side by side; a key error is still the one reported when both fail.
  // Before anything is created: a fork of the database's log must not even leave a directory behind.
  let [key] = await bothSettled(
    loadSigningKey({ signingKeyPath, evidenceDir }),
    targetAnchor ? assertWritableAgainstAnchor(evidenceDir, targetAnchor, log) : Promise.resolve(),
  );
  try {
    await mkdir(evidenceDir, { recursive: true, mode: EVIDENCE_DIR_MODE });
  } catch (error) {
    throw auditFailure(`Cannot create the evidence directory ${evidenceDir}`, error);
  }
  const head = await store.head();
  // A second host's key (introduced by key.add) signs beside the head's signer.
  const coSigns = async (k: SigningKey): Promise<boolean> => (await activeSigners(evidenceDir)).has(k.keyId);
  if (head && activeKeyId(head) !== key.keyId && !(await coSigns(key))) assertKeyMatches(key, activeKeyId(head), file);

  // After another process rotated the key, the key file holds the new key: pick it up.
  const chooseKey = async (active: string | null): Promise<SigningKey> => {
    if (active === null || active === key.keyId || (await coSigns(key))) return key;
    const reloaded = await loadSigningKey({ signingKeyPath, evidenceDir });
    if (reloaded.keyId !== active && (await coSigns(reloaded))) return (key = reloaded);
    assertKeyMatches(reloaded, active, file);
    key = reloaded;
    return key;
  };

  let logId: string | null = head?.seq === 1 ? head.hash : null;
  let anchor = targetAnchor;
  const witnesses = options.witnesses ?? configuredWitnesses(evidenceDir);

  // One process may append from several places at once; keep its own appends in order too.
  let queue: Promise<unknown> = Promise.resolve();
  return {
    async append<K extends EntryKind>(
      kind: K,
      body: RecordBody<K>,
      appendOptions: { runId?: string } = {},
    ): Promise<AuditEntry<RecordBody<K>>> {
      const next = queue.then(() => appendSignedEntry({ evidenceDir, log, kind, body, runId: appendOptions.runId, chooseKey }));
      queue = next.catch(() => {});
      const entry = await next;
      log.debug('audit entry appended', { seq: entry.seq, kind, runId: appendOptions.runId });
      if (anchor) {
        const recorded = await recordChainHead(anchor, file, entry, logId, log);
        // Warn once: a role that may not write safe_run.chain_head will not be allowed on the next entry either.
        if (recorded) logId = recorded;
        else anchor = null;
      }
      if (witnesses.length) {
        logId ??= entry.seq === 1 ? entry.hash : await readLogId(evidenceDir);
        await notifyWitnesses(evidenceDir, witnesses, witnessedHead(logId, entry), log);
      }
      return entry;
    },
  };
}

function assertKeyMatches(key: SigningKey, active: string, file: string): void {
  if (key.keyId === active) return;
  throw usageError(
    `The signing key ${key.path} (key ${key.keyId}) is not the key ${file} is signed with now (key ${active}); entries it signed would not verify.`,
    `Point SAFE_RUN_SIGNING_KEY (or "signingKey") at the private key of ${active}, or switch keys properly with \`safe-run keygen --rotate\` using that key.`,
  );
}

/**
 * Best effort: the entry is already durable, so a database that is down costs a warning,
 * not the run. Returns the log id (hash of entry 1) for the next call to reuse, or null
 * when the head could not be recorded.
 */
export async function recordChainHead(
  anchor: ChainAnchor,
  file: string,
  entry: AuditEntry,
  logId: string | null,
  log: Logger,
): Promise<string | null> {
  // A shared store keeps the chain head itself, where a DROP DATABASE of the target cannot reach.
  if (evidenceStore(path.dirname(file)).kind !== 'file') return logId;
  try {
    const id = entry.seq === 1 ? entry.hash : (logId ?? (await readLogId(path.dirname(file))));
    await anchor.record(id, entry.seq, entry.hash, { keyId: entry.keyId, evidenceDir: evidenceDirIdentity(path.dirname(file)) });
    return id;
  } catch (error) {
    log.warn(
      'Could not record the audit chain head in the database (the entry itself is written), so verify cannot catch a cut-off log tail. Let this role write it: CREATE SCHEMA safe_run; GRANT USAGE, CREATE ON SCHEMA safe_run TO <role> (as an owner)',
      { seq: entry.seq, error: errorMessage(error) },
    );
    return null;
  }
}

async function readLogId(evidenceDir: string): Promise<string> {
  const store = evidenceStore(evidenceDir);
  const id = await store.logId();
  if (!id) throw new Error(`${store.where} is empty`);
  return id;
}
