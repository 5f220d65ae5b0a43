import { unlink } from 'node:fs/promises';
import { usageError } from '../errors.js';
import { silentLogger, type Logger } from '../logger.js';
import type { ChainAnchor } from './anchor.js';
import { appendSignedEntry } from './append.js';
import { installPrivateKey, loadSigningKey, newKeyPair, publishPublicKey, writePrivateKeyBeside } from './keys.js';
import { recordChainHead } from './log.js';
import { auditLogPath } from './read.js';
import type { KeyRotateBody } from '../records/index.js';

export interface RotatedKey {
  readonly keyId: string;
  readonly previousKeyId: string;
  readonly privateKeyPath: string;
  readonly publicKeyPath: string;
  /** The seq of the key.rotate entry. */
  readonly seq: number;
}

/**
 * `safe-run keygen --rotate`. The old key signs a key.rotate entry naming the new key, and
 * that signature is what makes verify accept the new key from the next entry on. The new
 * private key replaces the old one inside the append lock, so no other writer can sign
 * with the retired key in between.
 */
export async function rotateSigningKey(options: {
  signingKeyPath: string;
  evidenceDir: string;
  anchor?: ChainAnchor | null;
  log?: Logger;
}): Promise<RotatedKey> {
  const log = options.log ?? silentLogger;
  const file = options.signingKeyPath;
  const old = await loadSigningKey(options);
  const pair = newKeyPair();
  const publicKeyPath = await publishPublicKey(options.evidenceDir, pair.publicKey);
  const temp = await writePrivateKeyBeside(file, pair.privateKey, pair.keyId);
  const body: KeyRotateBody = {
    newKeyId: pair.keyId,
    publicKey: pair.publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    previousKeyId: old.keyId,
  };
  let written = false;
  try {
    const entry = await appendSignedEntry({
      evidenceDir: options.evidenceDir,
      log,
      kind: 'key.rotate',
      body,
      chooseKey: async (active) => {
        if (active !== null && active !== old.keyId) {
          throw usageError(
            `The log is signed by key ${active} now, not by ${old.keyId} in ${file}; only the current key can introduce its successor.`,
            `Rotate with the current key (SAFE_RUN_SIGNING_KEY pointing at the private key of ${active}).`,
          );
        }
        return old;
      },
      afterWrite: async () => {
        written = true;
        await installPrivateKey(file, temp);
      },
    });
    if (options.anchor) await recordChainHead(options.anchor, auditLogPath(options.evidenceDir), entry, null, log);
    return { keyId: pair.keyId, previousKeyId: old.keyId, privateKeyPath: file, publicKeyPath, seq: entry.seq };
  } catch (error) {
    // Once the entry is written the new key is the only one that may sign: keep its file for the `mv` the error suggests.
    if (!written) await unlink(temp).catch(() => {});
    throw error;
  }
}
