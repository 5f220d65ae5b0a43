import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { AuditEntry } from './types.js';
import { errorMessage } from '../errors.js';

/**
 * Canonical JSON (RFC 8785: sorted keys, no whitespace, ECMAScript number form). The
 * signature covers bytes, so the writer must produce exactly one text for one value.
 */
export function canonicalJson(value: unknown): string {
  if (value === undefined) throw new TypeError('canonical JSON: undefined has no JSON form');
  let text: string | undefined;
  try {
    text = canonicalize(value);
  } catch (error) {
    throw new TypeError(`canonical JSON: ${errorMessage(error)}`);
  }
  if (text === undefined) throw new TypeError(`canonical JSON: a ${typeof value} has no JSON form`);
  return text;
}

/** The members of an entry other than `body`, `hash` and `sig`. */
export type EntryHeader = Omit<AuditEntry, 'body' | 'hash' | 'sig'>;

/**
 * The top-level keys of an entry are fixed, and in canonical order `body` comes first:
 * body < hash < keyId < kind < prev < runId < seq < sig < ts. Writing the members after
 * `body` by hand lets verify check a line without re-canonicalizing its body: the hash
 * covers the body's bytes exactly as stored, so any changed byte still shows.
 * (tests/audit-canonical.test.ts checks this equals canonicalize() of the whole entry.)
 */
export function entryTail(header: EntryHeader, signed?: { readonly hash: string; readonly sig: string }): string {
  let tail = signed ? `,"hash":${JSON.stringify(signed.hash)}` : '';
  tail += `,"keyId":${JSON.stringify(header.keyId)},"kind":${JSON.stringify(header.kind)},"prev":${JSON.stringify(header.prev)}`;
  if (header.runId !== undefined) tail += `,"runId":${JSON.stringify(header.runId)}`;
  tail += `,"seq":${JSON.stringify(header.seq)}`;
  if (signed) tail += `,"sig":${JSON.stringify(signed.sig)}`;
  return `${tail},"ts":${JSON.stringify(header.ts)}}`;
}

export const ENTRY_PREFIX = '{"body":';

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** sha256 of the canonical entry without `hash` and `sig`, from the body's canonical text. */
export function hashEntry(bodyText: string, header: EntryHeader): string {
  return sha256Hex(ENTRY_PREFIX + bodyText + entryTail(header));
}
