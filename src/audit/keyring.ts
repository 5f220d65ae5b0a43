import { createPublicKey, type KeyObject } from 'node:crypto';
import { errorMessage } from '../errors.js';
import { keyIdOf } from './keys.js';
import type { AuditEntry } from './types.js';
import type { RecordOf } from '../records/index.js';

/** Entries whose signer vouches for a new public key carried in the body. */
export const INTRODUCING_KINDS: ReadonlySet<string> = new Set(['key.rotate', 'key.add']);

/**
 * Which keys may sign the next entry: the genesis key from keys/, then each key a
 * key.rotate (which retires its signer) or a key.add (a second host; both keep signing)
 * introduced. A key in keys/ that no such entry introduced signs nothing.
 */
export class Keyring {
  readonly used: string[] = [];
  /** Every key that signed a verified entry, for matching fingerprints against trustedKeys. */
  readonly signers = new Map<string, KeyObject>();
  private readonly active = new Map<string, KeyObject>();
  private readonly retiredAt = new Map<string, number>();

  constructor(private readonly published: ReadonlyMap<string, KeyObject>) {}

  /** The key to check the signature with, or why there is none. */
  signerOf(entry: AuditEntry, genesis: boolean): KeyObject | string {
    if (genesis) {
      const key = this.published.get(entry.keyId);
      if (!key) return `entry ${entry.seq} is signed by key ${entry.keyId}, which is not in keys/`;
      this.active.set(entry.keyId, key);
    }
    const key = this.active.get(entry.keyId);
    if (!key) {
      const current = [...this.active.keys()].join(', ');
      const retired = this.retiredAt.get(entry.keyId);
      if (retired !== undefined)
        return `key ${entry.keyId} was retired by the key.rotate at entry ${retired}; only ${current} may sign after it`;
      if (this.published.has(entry.keyId))
        return `key ${entry.keyId} is in keys/ but no key.rotate or key.add entry introduced it before this entry (signing now: ${current})`;
      return `key ${entry.keyId} is not in keys/ and no key.rotate or key.add entry introduced it`;
    }
    if (!this.used.includes(entry.keyId)) this.used.push(entry.keyId);
    this.signers.set(entry.keyId, key);
    return key;
  }

  /** After a verified key.rotate or key.add: its signer's signature vouches for the new public key. */
  introduce(entry: RecordOf<'key.rotate'> | RecordOf<'key.add'>): string | null {
    const body = entry.body;
    let key: KeyObject;
    try {
      key = createPublicKey(body.publicKey);
    } catch (error) {
      return `the ${entry.kind} body has no usable public key: ${errorMessage(error)}`;
    }
    if (key.asymmetricKeyType !== 'ed25519' || keyIdOf(key) !== body.newKeyId) {
      return `the ${entry.kind} body names key ${body.newKeyId} but carries a different public key`;
    }
    if (entry.kind === 'key.rotate') {
      this.active.delete(entry.keyId);
      this.retiredAt.set(entry.keyId, entry.seq);
    }
    this.retiredAt.delete(body.newKeyId);
    this.active.set(body.newKeyId, key);
    return null;
  }

  /** Ids of the keys that may sign the next entry. */
  activeIds(): string[] {
    return [...this.active.keys()];
  }
}
