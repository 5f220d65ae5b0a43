import type { KeyObject } from 'node:crypto';
import { errorMessage } from '../errors.js';
import type { ChainAnchor } from './anchor.js';
import { evidenceDirIdentity } from './anchor.js';
import { keyFingerprint } from './keys.js';
import type { KeyTrust, VerifyProblem } from './types.js';

/**
 * Key pinning. Anyone who can write the evidence directory can drop a key into keys/ and
 * re-sign the whole log from entry 1, so keys/ alone proves nothing. A key is pinned by
 * config `trustedKeys` (kept outside the evidence directory) or by the key the database
 * anchor recorded with a head written from this evidence directory.
 *
 * The chain rules (Keyring) already force every signer after entry 1 to be introduced by
 * a key.rotate or key.add that an earlier signer signed; so the only key an attacker can
 * choose freely is entry 1's. A log is trusted when at least one of its entries is signed
 * by a pinned key: that signature covers the hash chain back to entry 1, and every later
 * signer was introduced from there. With no pin at all, entry 1's key is trusted on first
 * use, and the result says so.
 */
export interface KeyPins {
  /** Fingerprints (or prefixes of 16+ hex digits) from config trustedKeys. */
  readonly trustedKeys: readonly string[];
  /** Key ids the anchor recorded for this log or for this evidence directory. */
  readonly anchorKeys: readonly string[];
}

/** The anchored keys for this log id, and for any log anchored from this directory (a log replaced wholesale). */
export async function anchoredKeys(
  anchor: ChainAnchor | null | undefined,
  logId: string | null,
  evidenceDir: string,
  warnings: string[],
): Promise<string[]> {
  if (!anchor?.list) return [];
  const here = evidenceDirIdentity(evidenceDir);
  try {
    const rows = await anchor.list();
    return [...new Set(rows.filter((r) => r.keyId && (r.logId === logId || r.evidenceDir === here)).map((r) => r.keyId!))];
  } catch (error) {
    warnings.push(`Could not read the keys pinned by the database anchor (${errorMessage(error)}).`);
    return [];
  }
}

export function keyTrust(pins: KeyPins): KeyTrust {
  const pinned = [...new Set([...pins.trustedKeys, ...pins.anchorKeys])];
  return { mode: pinned.length ? 'pinned' : 'first-use', pinned };
}

/** The untrusted-key problem for a log none of whose signers is pinned, or null. */
export function untrustedSigners(
  pins: KeyPins,
  signers: ReadonlyMap<string, KeyObject>,
  genesis: { readonly keyId: string; readonly line: number } | null,
): (Omit<VerifyProblem, 'seq'> & { readonly seq: number }) | null {
  if (!genesis || (!pins.trustedKeys.length && !pins.anchorKeys.length)) return null;
  const isPinned = (keyId: string, key: KeyObject): boolean =>
    pins.anchorKeys.includes(keyId) || pins.trustedKeys.some((t) => keyFingerprint(key).startsWith(t));
  if ([...signers].some(([id, key]) => isPinned(id, key))) return null;
  const from = [
    pins.trustedKeys.length ? `trustedKeys pins ${pins.trustedKeys.join(', ')}` : '',
    pins.anchorKeys.length ? `the database anchor recorded key ${pins.anchorKeys.join(', ')}` : '',
  ].filter(Boolean);
  return {
    seq: 1,
    line: genesis.line,
    reason: 'untrusted-key',
    detail:
      `entry 1 is signed by key ${genesis.keyId}, which is not pinned (${from.join('; ')}), and no entry is signed by a pinned key ` +
      `(signers: ${[...signers.keys()].join(', ')}): the log was re-signed with a key placed in keys/`,
  };
}
