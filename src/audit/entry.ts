import { sign, verify, type KeyObject } from 'node:crypto';
import { canonicalJson, ENTRY_PREFIX, entryTail, hashEntry, type EntryHeader } from './canonical.js';
import type { SigningKey } from './keys.js';
import type { AuditEntry, EntryKind } from './types.js';
import { errorMessage } from '../errors.js';

/** One line of audit.jsonl that is not an entry: not JSON, or not the shape of one. */
export class MalformedEntryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MalformedEntryError';
  }
}

const HEX64 = /^[0-9a-f]{64}$/;
const HEX128 = /^[0-9a-f]{128}$/;
const KEY_ID = /^[0-9a-f]{16}$/;
// Kinds grow over time (SPEC lists "…"), so any dotted lower-case name is an entry kind.
const KIND = /^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)*$/;
const REQUIRED = ['body', 'hash', 'keyId', 'kind', 'prev', 'seq', 'sig', 'ts'] as const;
const ALLOWED = new Set<string>([...REQUIRED, 'runId']);

/** Parse and shape-check a line. Says nothing about whether it is authentic. */
export function parseEntryLine(line: string): AuditEntry {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (error) {
    throw new MalformedEntryError(`not JSON (${errorMessage(error)})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new MalformedEntryError('not a JSON object');
  const e = value as Record<string, unknown>;
  for (const key of REQUIRED) if (!(key in e)) throw new MalformedEntryError(`no "${key}" member`);
  for (const key of Object.keys(e)) if (!ALLOWED.has(key)) throw new MalformedEntryError(`unexpected member "${key}"`);
  if (typeof e.seq !== 'number' || !Number.isSafeInteger(e.seq) || e.seq < 1)
    throw new MalformedEntryError('"seq" is not a positive integer');
  if (typeof e.ts !== 'string') throw new MalformedEntryError('"ts" is not a string');
  if (typeof e.kind !== 'string' || !KIND.test(e.kind)) throw new MalformedEntryError('"kind" is not an entry kind');
  if (e.runId !== undefined && typeof e.runId !== 'string') throw new MalformedEntryError('"runId" is not a string');
  if (typeof e.prev !== 'string' || !HEX64.test(e.prev)) throw new MalformedEntryError('"prev" is not a sha256 hex digest');
  if (typeof e.hash !== 'string' || !HEX64.test(e.hash)) throw new MalformedEntryError('"hash" is not a sha256 hex digest');
  if (typeof e.keyId !== 'string' || !KEY_ID.test(e.keyId)) throw new MalformedEntryError('"keyId" is not a key id');
  if (typeof e.sig !== 'string' || !HEX128.test(e.sig)) throw new MalformedEntryError('"sig" is not an Ed25519 signature');
  return e as unknown as AuditEntry;
}

/**
 * Does the stored line hash to its `hash`? Works on the line's own bytes: the members after
 * `body` are re-rendered canonically and must match the line's tail; the body is hashed
 * exactly as stored. So any changed byte is caught without re-canonicalizing the body.
 */
export function checkEntryHash(line: string, entry: AuditEntry): { readonly ok: true } | { readonly ok: false; readonly detail: string } {
  const tail = entryTail(entry, entry);
  if (!line.startsWith(ENTRY_PREFIX) || !line.endsWith(tail) || line.length < ENTRY_PREFIX.length + tail.length) {
    return { ok: false, detail: 'the line is not in canonical JSON form, so its bytes are not the ones that were hashed and signed' };
  }
  const bodyText = line.slice(ENTRY_PREFIX.length, line.length - tail.length);
  const actual = hashEntry(bodyText, entry);
  if (actual === entry.hash) return { ok: true };
  // Only on failure: say whether the bytes were reformatted or the content changed.
  const canonical = safeCanonical(entry.body) === bodyText;
  return {
    ok: false,
    detail: canonical
      ? `the content hashes to ${actual.slice(0, 16)}…, not the recorded ${entry.hash.slice(0, 16)}…: it was changed after signing`
      : 'the body is not in canonical JSON form, so its bytes are not the ones that were hashed and signed',
  };
}

export function signatureValid(entry: AuditEntry, publicKey: KeyObject): boolean {
  return verify(null, Buffer.from(entry.hash, 'utf8'), publicKey, Buffer.from(entry.sig, 'hex'));
}

export interface EntryDraft<B> {
  readonly seq: number;
  readonly prev: string;
  readonly kind: EntryKind;
  readonly body: B;
  readonly runId?: string;
  readonly ts?: string;
}

/** A signed entry and its exact line. The line is canonicalize(entry) (tests check that). */
export function signEntry<B>(draft: EntryDraft<B>, key: Pick<SigningKey, 'keyId' | 'privateKey'>): { entry: AuditEntry<B>; line: string } {
  if (draft.runId !== undefined) canonicalJson(draft.runId); // rejects lone surrogates, which JSON.stringify would escape differently
  const bodyText = canonicalJson(draft.body);
  const header: EntryHeader = {
    seq: draft.seq,
    ts: draft.ts ?? new Date().toISOString(),
    kind: draft.kind,
    ...(draft.runId !== undefined ? { runId: draft.runId } : {}),
    prev: draft.prev,
    keyId: key.keyId,
  };
  const hash = hashEntry(bodyText, header);
  const sig = sign(null, Buffer.from(hash, 'utf8'), key.privateKey).toString('hex');
  const line = ENTRY_PREFIX + bodyText + entryTail(header, { hash, sig });
  return { entry: { ...header, body: draft.body, hash, sig }, line };
}

function safeCanonical(value: unknown): string | null {
  try {
    return canonicalJson(value);
  } catch {
    return null;
  }
}
