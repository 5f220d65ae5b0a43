import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { usageError, errorMessage } from '../errors.js';
import { silentLogger, type Logger } from '../logger.js';
import type { ChainAnchor } from './anchor.js';
import { appendSignedEntry } from './append.js';
import { keyIdOf, loadSigningKey, publishPublicKey } from './keys.js';
import { recordChainHead } from './log.js';
import { auditLogPath } from './read.js';
import { activeSigners } from './signers.js';
import type { KeyAddBody } from '../records/index.js';

export interface AddedKey {
  readonly keyId: string;
  readonly signedBy: string;
  readonly publicKeyPath: string;
  /** The seq of the key.add entry. */
  readonly seq: number;
}

/**
 * `safe-run keygen --add FILE.pub`: a second host's key. The current key signs a key.add
 * entry carrying the new public key, which is what lets verify accept entries that key
 * signs (a key merely copied into keys/ signs nothing). Both keys keep signing.
 */
export async function addSigningKey(options: {
  signingKeyPath: string;
  evidenceDir: string;
  publicKeyFile: string;
  anchor?: ChainAnchor | null;
  log?: Logger;
}): Promise<AddedKey> {
  const log = options.log ?? silentLogger;
  const current = await loadSigningKey(options);
  const added = await readPublicKey(options.publicKeyFile);
  const keyId = keyIdOf(added);
  if (keyId === current.keyId)
    throw usageError(
      `${options.publicKeyFile} is this host's own key ${keyId}.`,
      'Give the public key of the other host (its keys/<id>.pub).',
    );
  const body: KeyAddBody = { newKeyId: keyId, publicKey: added.export({ format: 'pem', type: 'spki' }).toString() };
  const entry = await appendSignedEntry({
    evidenceDir: options.evidenceDir,
    log,
    kind: 'key.add',
    body,
    chooseKey: async (active) => {
      if (active !== null && active !== current.keyId && !(await activeSigners(options.evidenceDir)).has(current.keyId)) {
        throw usageError(
          `The log is signed by key ${active} now, and ${current.keyId} in ${current.path} may not sign it; only a current key can add another.`,
          `Run \`safe-run keygen --add\` on the host that holds key ${active}.`,
        );
      }
      return current;
    },
  });
  const publicKeyPath = await publishPublicKey(options.evidenceDir, added);
  if (options.anchor) await recordChainHead(options.anchor, auditLogPath(options.evidenceDir), entry, null, log);
  return { keyId, signedBy: current.keyId, publicKeyPath, seq: entry.seq };
}

async function readPublicKey(file: string): Promise<KeyObject> {
  let key: KeyObject;
  try {
    key = createPublicKey(await readFile(file));
  } catch (error) {
    throw usageError(
      `${file} is not a PEM public key: ${errorMessage(error)}`,
      'Give the .pub file `safe-run keygen` wrote on the other host (in its keys/).',
    );
  }
  if (key.asymmetricKeyType !== 'ed25519')
    throw usageError(
      `${file} is a ${key.asymmetricKeyType ?? 'unknown'} key; safe-run signs with Ed25519.`,
      'Give an Ed25519 key from `safe-run keygen`.',
    );
  return key;
}
