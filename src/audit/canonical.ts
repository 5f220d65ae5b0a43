import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { AuditEntry } from './types.js';
import { errorMessage } from '../errors.js';

/**
 * Canonical JSON (RFC 8785: sorted keys, no whitespace, ECMAScript number form). The
 * signature covers bytes, so the writer must produce exactly one text for one value.
 *
 * The `canonicalize` package is the definition. A run's snapshot bodies are 50-60 kB, which it
 * took 7-11 ms of the main thread to write, each on the way to an fsync the run waits for; so a
 * value JSON.stringify writes the same way (sortedCopy) goes through it instead, in about 2.
 * Anything else goes through the package, which also gives the errors.
 */
export function canonicalJson(value: unknown): string {
  if (value === undefined) throw new TypeError('canonical JSON: undefined has no JSON form');
  let text: string | undefined;
  try {
    const sorted = sortedCopy(value);
    text = sorted === NOT_PLAIN ? canonicalize(value) : JSON.stringify(sorted);
  } catch (error) {
    throw new TypeError(`canonical JSON: ${errorMessage(error)}`);
  }
  if (text === undefined) throw new TypeError(`canonical JSON: a ${typeof value} has no JSON form`);
  return text;
}

const NOT_PLAIN = Symbol('not plain JSON');

/**
 * The value with every object's keys inserted in sorted (UTF-16 code unit) order, for which
 * JSON.stringify writes RFC 8785's text; NOT_PLAIN where it would not:
 * - a key that starts with a digit: JavaScript lists array-index keys ("7", "10") first, in
 *   numeric order, whatever the order they were inserted in;
 * - what RFC 8785 refuses and JSON.stringify writes anyway (NaN, Infinity, a lone surrogate);
 * - a function, which the package writes otherwise than JSON.stringify.
 * toJSON is called as the package calls it, with no argument. Entry bodies are trees of
 * records, never cyclic; a cycle would end in a RangeError here.
 */
function sortedCopy(value: unknown): unknown {
  switch (typeof value) {
    case 'string':
      return (value as WellFormed).isWellFormed() ? value : NOT_PLAIN;
    case 'number':
      return Number.isFinite(value) ? value : NOT_PLAIN;
    case 'function':
      return NOT_PLAIN;
    case 'object': {
      if (value === null) return null;
      const json = (value as { toJSON?: unknown }).toJSON;
      if (typeof json === 'function') return sortedCopy((json as () => unknown).call(value));
      if (Array.isArray(value)) {
        const items: unknown[] = [];
        for (const item of value) {
          const copy = sortedCopy(item);
          if (copy === NOT_PLAIN) return NOT_PLAIN;
          items.push(copy);
        }
        return items;
      }
      // No prototype: a "__proto__" key (JSON.parse makes one) stays an own property.
      const copy = Object.create(null) as Record<string, unknown>;
      for (const key of Object.keys(value).sort()) {
        const code = key.charCodeAt(0);
        if ((code >= 0x30 && code <= 0x39) || !(key as WellFormed).isWellFormed()) return NOT_PLAIN;
        const item = sortedCopy((value as Record<string, unknown>)[key]);
        if (item === NOT_PLAIN) return NOT_PLAIN;
        copy[key] = item;
      }
      return copy;
    }
    default:
      // boolean, undefined and symbol (JSON.stringify and the package agree), bigint (both throw).
      return value;
  }
}

/** ES2024's String.prototype.isWellFormed (Node 20): no lone surrogate. Not in the ES2023 lib. */
type WellFormed = string & { isWellFormed(): boolean };

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
