import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { generateSigningKey } from '../../src/audit/keys.js';
import { auditLogPath } from '../../src/audit/read.js';

export interface TestEvidence {
  /** Temp dir holding both the evidence directory and (outside it) the private key. */
  readonly dir: string;
  readonly evidenceDir: string;
  readonly signingKey: string;
  readonly keyId: string;
  /** For CLI runs: points safe-run at this evidence dir and key. */
  readonly env: { readonly SAFE_RUN_EVIDENCE_DIR: string; readonly SAFE_RUN_SIGNING_KEY: string };
  cleanup(): Promise<void>;
}

/** A temp evidence directory with a fresh key pair made by the real keygen. */
export async function createEvidence(): Promise<TestEvidence> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'safe-run-evidence-'));
  const evidenceDir = path.join(dir, 'evidence');
  const signingKey = path.join(dir, 'private', 'signing.key');
  const { keyId } = await generateSigningKey({ signingKeyPath: signingKey, evidenceDir });
  return {
    dir,
    evidenceDir,
    signingKey,
    keyId,
    env: { SAFE_RUN_EVIDENCE_DIR: evidenceDir, SAFE_RUN_SIGNING_KEY: signingKey },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** The lines of audit.jsonl, for tests that tamper with it. */
export function logLines(evidenceDir: string): string[] {
  const text = readFileSync(auditLogPath(evidenceDir), 'utf8');
  return text === '' ? [] : text.replace(/\n$/, '').split('\n');
}

export function writeLogLines(evidenceDir: string, lines: readonly string[]): void {
  writeFileSync(auditLogPath(evidenceDir), lines.length ? `${lines.join('\n')}\n` : '');
}
