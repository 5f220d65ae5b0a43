import { appendFileSync, existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { databaseAnchor } from '../src/audit/anchor.js';
import { signEntry } from '../src/audit/entry.js';
import { generateSigningKey, loadSigningKey, publicKeyPath } from '../src/audit/keys.js';
import { openAuditLog } from '../src/audit/log.js';
import { auditLogPath } from '../src/audit/read.js';
import { rotateSigningKey } from '../src/audit/rotate.js';
import type { AuditEntry } from '../src/audit/types.js';
import type { KeyRotateBody } from '../src/records/index.js';
import { verifyLog } from '../src/audit/verify.js';
import { ExitCode } from '../src/errors.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { createEvidence, logLines, type TestEvidence } from './helpers/evidence.js';
import { rejection } from './helpers/errors.js';
import { appendNote, NOTE_KIND } from './helpers/note-kind.js';

describe('generateSigningKey', () => {
  let ev: TestEvidence;
  beforeEach(async () => {
    ev = await createEvidence();
  });
  afterEach(async () => {
    await ev.cleanup();
  });

  it('writes the private key mode 0600 and the public key into keys/<keyId>.pub', async () => {
    expect(statSync(ev.signingKey).mode & 0o777).toBe(0o600);
    expect(readFileSync(ev.signingKey, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(readFileSync(publicKeyPath(ev.evidenceDir, ev.keyId), 'utf8')).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    expect((await loadSigningKey({ signingKeyPath: ev.signingKey, evidenceDir: ev.evidenceDir })).keyId).toBe(ev.keyId);
  });

  it('refuses to overwrite a private key unless forced', async () => {
    const error = await rejection(generateSigningKey({ signingKeyPath: ev.signingKey, evidenceDir: ev.evidenceDir }));
    expect(error.exitCode).toBe(ExitCode.usage);
    expect(error.message).toContain(ev.signingKey);
    const forced = await generateSigningKey({ signingKeyPath: ev.signingKey, evidenceDir: ev.evidenceDir, force: true });
    expect(forced.keyId).not.toBe(ev.keyId);
    expect(statSync(ev.signingKey).mode & 0o777).toBe(0o600);
    expect(existsSync(forced.publicKeyPath)).toBe(true);
  });
});

describe('key rotation', () => {
  let t: TestDatabase;
  let ev: TestEvidence;
  beforeAll(async () => {
    t = await createTestDatabase('rotate');
  });
  afterAll(async () => {
    await t.drop();
  });
  beforeEach(async () => {
    ev = await createEvidence();
    const audit = await openAuditLog({ evidenceDir: ev.evidenceDir, signingKeyPath: ev.signingKey });
    for (let i = 1; i <= 3; i++) await appendNote(audit, { i });
  });
  afterEach(async () => {
    await ev.cleanup();
  });

  it('has the old key sign a key.rotate entry that introduces the new one', async () => {
    const oldKeyId = ev.keyId;
    const heldOpen = await openAuditLog({ evidenceDir: ev.evidenceDir, signingKeyPath: ev.signingKey });
    const rotated = await rotateSigningKey({ signingKeyPath: ev.signingKey, evidenceDir: ev.evidenceDir, anchor: databaseAnchor(t.db) });
    expect(rotated).toMatchObject({ previousKeyId: oldKeyId, seq: 4, privateKeyPath: ev.signingKey });
    expect(statSync(ev.signingKey).mode & 0o777).toBe(0o600);

    const entry = JSON.parse(logLines(ev.evidenceDir)[3]!) as AuditEntry<KeyRotateBody>;
    expect(entry).toMatchObject({
      seq: 4,
      kind: 'key.rotate',
      keyId: oldKeyId,
      body: { newKeyId: rotated.keyId, previousKeyId: oldKeyId },
    });
    expect(entry.body.publicKey).toBe(readFileSync(rotated.publicKeyPath, 'utf8'));

    // A log opened before the rotation picks up the new key from the key file.
    expect((await appendNote(heldOpen, { after: 1 })).keyId).toBe(rotated.keyId);
    const fresh = await openAuditLog({ evidenceDir: ev.evidenceDir, signingKeyPath: ev.signingKey });
    expect((await appendNote(fresh, { after: 2 })).keyId).toBe(rotated.keyId);

    const result = await verifyLog({ evidenceDir: ev.evidenceDir, anchor: databaseAnchor(t.db) });
    expect(result).toMatchObject({ ok: true, entries: 6, keys: [oldKeyId, rotated.keyId] });
    expect(result.anchor).toMatchObject({ seq: 4 });
  });

  it('names an entry signed by a key that is in keys/ but not yet introduced: unknown-key', async () => {
    const other = await generateSigningKey({ signingKeyPath: path.join(ev.dir, 'other.key'), evidenceDir: ev.evidenceDir });
    const key = await loadSigningKey({ signingKeyPath: other.privateKeyPath, evidenceDir: ev.evidenceDir });
    const head = JSON.parse(logLines(ev.evidenceDir)[2]!) as AuditEntry;
    appendFileSync(
      auditLogPath(ev.evidenceDir),
      `${signEntry({ seq: 4, prev: head.hash, kind: NOTE_KIND, body: { early: true } }, key).line}\n`,
    );
    const result = await verifyLog({ evidenceDir: ev.evidenceDir });
    expect(result.firstBad).toMatchObject({ seq: 4, line: 4, reason: 'unknown-key' });
    expect(result.firstBad!.detail).toMatch(/in keys\/ but no key.rotate or key.add entry introduced it/);
  });

  it('retires the old key: an entry it signs after the rotation is unknown-key', async () => {
    const oldKey = await loadSigningKey({ signingKeyPath: ev.signingKey, evidenceDir: ev.evidenceDir });
    const rotated = await rotateSigningKey({ signingKeyPath: ev.signingKey, evidenceDir: ev.evidenceDir });
    const head = JSON.parse(logLines(ev.evidenceDir)[3]!) as AuditEntry;
    appendFileSync(auditLogPath(ev.evidenceDir), `${signEntry({ seq: 5, prev: head.hash, kind: NOTE_KIND, body: {} }, oldKey).line}\n`);
    const result = await verifyLog({ evidenceDir: ev.evidenceDir });
    expect(result.firstBad).toMatchObject({
      seq: 5,
      reason: 'unknown-key',
      detail: expect.stringMatching(/retired by the key.rotate at entry 4/),
    });
    expect(result.keys).toEqual([oldKey.keyId]);
    expect(rotated.seq).toBe(4);
  });

  it('lets only the current key rotate', async () => {
    const stale = path.join(ev.dir, 'stale.key');
    await generateSigningKey({ signingKeyPath: stale, evidenceDir: ev.evidenceDir });
    const error = await rejection(rotateSigningKey({ signingKeyPath: stale, evidenceDir: ev.evidenceDir }));
    expect(error.exitCode).toBe(ExitCode.usage);
    expect(error.message).toContain(`signed by key ${ev.keyId}`);
    expect(logLines(ev.evidenceDir)).toHaveLength(3);
    expect((await verifyLog({ evidenceDir: ev.evidenceDir })).ok).toBe(true);
  });
});
