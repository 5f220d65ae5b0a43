import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { chmod, mkdir, open, readFile, readdir, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { ExitCode, SafeRunError, usageError, errorMessage, errorCode } from '../errors.js';
import { auditFailure, fsyncDir } from './jsonl.js';
import { EVIDENCE_DIR_MODE } from './modes.js';

/** A loaded private key. The key material stays inside the KeyObject and is never logged. */
export interface SigningKey {
  readonly keyId: string;
  readonly privateKey: KeyObject;
  readonly publicKeyPem: string;
  readonly path: string;
}

export interface GeneratedKey {
  readonly keyId: string;
  readonly privateKeyPath: string;
  readonly publicKeyPath: string;
}

export const keysDir = (evidenceDir: string): string => path.join(evidenceDir, 'keys');
export const publicKeyPath = (evidenceDir: string, keyId: string): string => path.join(keysDir(evidenceDir), `${keyId}.pub`);

/** Derived from the key itself, so a file name in keys/ can never make a key claim another id. */
export function keyIdOf(publicKey: KeyObject): string {
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x ?? '', 'base64url');
  return createHash('sha256').update(raw).digest('hex').slice(0, 16);
}

/** The full sha256 fingerprint; `trustedKeys` may pin any prefix of it of 16 or more digits (the key id is the first 16). */
export function keyFingerprint(publicKey: KeyObject): string {
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x ?? '', 'base64url');
  return createHash('sha256').update(raw).digest('hex');
}

/** Throws a usage error (exit 2) for a missing, unsafe or unreadable key: nothing has been written yet. */
export async function loadSigningKey(options: { signingKeyPath: string; evidenceDir: string }): Promise<SigningKey> {
  const file = options.signingKeyPath;
  assertOutsideEvidence(file, options.evidenceDir);
  let mode: number;
  try {
    mode = (await stat(file)).mode;
  } catch (error) {
    if (errorCode(error) === 'ENOENT') {
      throw usageError(`No signing key at ${file}.`, 'Run `safe-run keygen` (or point SAFE_RUN_SIGNING_KEY / "signingKey" at your key).');
    }
    throw usageError(`Cannot read the signing key ${file}: ${errorMessage(error)}`, 'Check the path and its permissions.');
  }
  // Root ignores modes, so this check is the only thing that keeps a shared key from being used.
  if ((mode & 0o077) !== 0) {
    throw usageError(
      `The signing key ${file} is readable by others (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); refusing to sign with it.`,
      `Run \`chmod 600 ${file}\`, and consider rotating the key with \`safe-run keygen --rotate\` if others may have read it.`,
    );
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(await readFile(file));
  } catch (error) {
    throw usageError(`${file} is not a PEM private key: ${errorMessage(error)}`, 'Run `safe-run keygen --force` to replace it.');
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw usageError(
      `${file} is a ${privateKey.asymmetricKeyType ?? 'unknown'} key; safe-run signs with Ed25519.`,
      'Run `safe-run keygen --force` to replace it.',
    );
  }
  const publicKey = createPublicKey(privateKey);
  return { keyId: keyIdOf(publicKey), privateKey, publicKeyPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(), path: file };
}

/** A private key inside the evidence directory would travel with the evidence it is meant to vouch for. */
function assertOutsideEvidence(keyPath: string, evidenceDir: string): void {
  const rel = path.relative(path.resolve(evidenceDir), path.resolve(keyPath));
  if (rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel))) {
    throw usageError(
      `The signing key ${keyPath} is inside the evidence directory ${evidenceDir}.`,
      'Keep the private key outside it (default ~/.config/safe-run/signing.key); set SAFE_RUN_SIGNING_KEY or "signingKey".',
    );
  }
}

export function newKeyPair(): { privateKey: KeyObject; publicKey: KeyObject; keyId: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicKey, keyId: keyIdOf(publicKey) };
}

/** `safe-run keygen`: a new key pair; the private key mode 0600, the public key into <evidenceDir>/keys/. */
export async function generateSigningKey(options: { signingKeyPath: string; evidenceDir: string; force?: boolean }): Promise<GeneratedKey> {
  const file = options.signingKeyPath;
  assertOutsideEvidence(file, options.evidenceDir);
  if (!options.force && (await exists(file))) {
    throw usageError(
      `A signing key already exists at ${file}; not overwriting it.`,
      'Use `safe-run keygen --rotate` to switch keys on a log it already signs; `--force` replaces it outright, which only suits a key that has signed nothing yet.',
    );
  }
  const pair = newKeyPair();
  const publicKeyFile = await publishPublicKey(options.evidenceDir, pair.publicKey);
  await installPrivateKey(file, await writePrivateKeyBeside(file, pair.privateKey, pair.keyId));
  return { keyId: pair.keyId, privateKeyPath: file, publicKeyPath: publicKeyFile };
}

/** Written next to its final path so that the rename that installs it is atomic. */
export async function writePrivateKeyBeside(file: string, privateKey: KeyObject, keyId: string): Promise<string> {
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const temp = `${file}.new-${keyId}`;
  try {
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    const handle = await open(temp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC, 0o600);
    try {
      await handle.chmod(0o600); // O_CREAT keeps the mode of a file left over from an earlier attempt
      await handle.writeFile(pem);
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (error) {
    await unlink(temp).catch(() => {});
    throw usageError(
      `Cannot write the signing key ${file}: ${errorMessage(error)}`,
      'Choose a writable location with SAFE_RUN_SIGNING_KEY or "signingKey".',
      error,
    );
  }
  return temp;
}

export async function installPrivateKey(file: string, temp: string): Promise<void> {
  try {
    await rename(temp, file);
    await chmod(file, 0o600);
    await fsyncDir(path.dirname(file));
  } catch (error) {
    throw usageError(
      `Cannot install the signing key ${file}: ${errorMessage(error)}`,
      `The new key is in ${temp}; move it into place with \`mv ${temp} ${file}\`.`,
      error,
    );
  }
}

/** Idempotent: the same key always lands in the same file with the same bytes. */
export async function publishPublicKey(evidenceDir: string, publicKey: KeyObject): Promise<string> {
  const file = publicKeyPath(evidenceDir, keyIdOf(publicKey));
  if (await exists(file)) return file;
  try {
    await mkdir(keysDir(evidenceDir), { recursive: true, mode: EVIDENCE_DIR_MODE });
    const handle = await open(`${file}.tmp`, 'w', 0o644);
    try {
      await handle.writeFile(publicKey.export({ format: 'pem', type: 'spki' }).toString());
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(`${file}.tmp`, file);
    await fsyncDir(path.dirname(file));
  } catch (error) {
    throw auditFailure(`Cannot write the public key ${file}`, error);
  }
  return file;
}

export interface PublicKeySet {
  readonly keys: ReadonlyMap<string, KeyObject>;
  /** keys/ files that could not be used; reported as warnings, never fatal on their own. */
  readonly problems: readonly string[];
}

/** Every public key in <evidenceDir>/keys, by the id computed from its content. */
export async function loadPublicKeys(evidenceDir: string): Promise<PublicKeySet> {
  const keys = new Map<string, KeyObject>();
  const problems: string[] = [];
  let names: string[];
  try {
    names = await readdir(keysDir(evidenceDir));
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return { keys, problems };
    throw new SafeRunError(
      `Cannot read ${keysDir(evidenceDir)}: ${errorMessage(error)}`,
      ExitCode.auditFailed,
      'Check the evidence directory.',
      { cause: error },
    );
  }
  for (const name of names.filter((n) => n.endsWith('.pub')).sort()) {
    const file = path.join(keysDir(evidenceDir), name);
    try {
      const key = createPublicKey(await readFile(file));
      if (key.asymmetricKeyType !== 'ed25519') throw new Error(`a ${key.asymmetricKeyType} key, not Ed25519`);
      const keyId = keyIdOf(key);
      if (name !== `${keyId}.pub`) problems.push(`${file} holds key ${keyId}; its name does not match (the content counts)`);
      keys.set(keyId, key);
    } catch (error) {
      problems.push(`${file} is not a usable public key: ${errorMessage(error)}`);
    }
  }
  return { keys, problems };
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return false;
    throw error;
  }
}
