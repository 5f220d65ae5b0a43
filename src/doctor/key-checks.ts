import { existsSync, statSync } from 'node:fs';
import { activeKeyId } from '../audit/append.js';
import { keysDir, loadPublicKeys, loadSigningKey, publicKeyPath, type SigningKey } from '../audit/keys.js';
import { evidenceStore } from '../audit/store.js';
import type { Config } from '../config/config.js';
import { ExitCode } from '../errors.js';
import { fail, failFrom, pass, type DoctorCheck } from './check.js';

/**
 * The signing key as a run will load it (the same function, so the same refusals: missing,
 * readable by others, not Ed25519), then whether verify can find its public half and whether
 * it is the key the log is signed with now.
 */
export async function checkSigningKey(config: Config): Promise<DoctorCheck[]> {
  let key: SigningKey;
  try {
    key = await loadSigningKey({ signingKeyPath: config.signingKey, evidenceDir: config.evidenceDir });
  } catch (error) {
    return [
      failFrom('signing-key', error, ExitCode.usage, 'Run `safe-run keygen`, or point SAFE_RUN_SIGNING_KEY / "signingKey" at your key.'),
      fail('public-key', 'not checked: no usable signing key', 'Fix the signing key first.', ExitCode.usage),
    ];
  }
  const mode = (statSync(key.path).mode & 0o777).toString(8).padStart(4, '0');
  const checks: DoctorCheck[] = [];
  const active = await logsActiveKey(config.evidenceDir);
  if (active && active !== key.keyId) {
    checks.push(
      fail(
        'signing-key',
        `${key.path} is key ${key.keyId}, but ${evidenceStore(config.evidenceDir).where} is signed with key ${active} now; a run would refuse to append.`,
        `Point SAFE_RUN_SIGNING_KEY (or "signingKey") at the private key of ${active}, or rotate with \`safe-run keygen --rotate\` using that key.`,
        ExitCode.usage,
      ),
    );
  } else {
    checks.push(pass('signing-key', `${key.path} (mode ${mode}, Ed25519, key ${key.keyId})`));
  }
  checks.push(await checkPublicKey(config.evidenceDir, key, active !== null));
  return checks;
}

/** The key the next entry must be signed with, or null for a log with no entries yet. */
async function logsActiveKey(evidenceDir: string): Promise<string | null> {
  try {
    const head = await evidenceStore(evidenceDir).head();
    return head ? activeKeyId(head) : null;
  } catch {
    // A damaged tail is the audit-log check's finding; it is not a key problem.
    return null;
  }
}

async function checkPublicKey(evidenceDir: string, key: SigningKey, logHasEntries: boolean): Promise<DoctorCheck> {
  const file = publicKeyPath(evidenceDir, key.keyId);
  const publish = `Publish it: \`mkdir -p ${keysDir(evidenceDir)} && openssl pkey -in ${key.path} -pubout -out ${file}\`.`;
  if (!existsSync(file)) {
    // The first entry of a new log publishes the key itself, so only an existing log needs it now.
    if (!logHasEntries) return pass('public-key', `${file} not written yet; the first audit entry publishes it`);
    return fail(
      'public-key',
      `${file} is missing: \`safe-run verify\` cannot check entries signed by key ${key.keyId}.`,
      publish,
      ExitCode.usage,
    );
  }
  const published = await loadPublicKeys(evidenceDir).catch(() => null);
  if (!published?.keys.has(key.keyId)) {
    return fail(
      'public-key',
      `${file} does not hold the public half of key ${key.keyId}.`,
      publish.replace('Publish it', 'Replace it'),
      ExitCode.usage,
    );
  }
  return pass('public-key', file);
}
