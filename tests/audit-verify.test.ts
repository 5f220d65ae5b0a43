import { appendFileSync, rmSync } from 'node:fs';
import { databaseAnchor } from '../src/audit/anchor.js';
import { signEntry } from '../src/audit/entry.js';
import { loadSigningKey, newKeyPair } from '../src/audit/keys.js';
import { openAuditLog, type AuditLog } from '../src/audit/log.js';
import { auditLogPath } from '../src/audit/read.js';
import type { AuditEntry, VerifyResult } from '../src/audit/types.js';
import { verifyLog } from '../src/audit/verify.js';
import { createDb } from '../src/db/connection.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { createEvidence, logLines, writeLogLines, type TestEvidence } from './helpers/evidence.js';
import { appendNote, NOTE_KIND } from './helpers/note-kind.js';

describe('verifyLog', () => {
  let t: TestDatabase;
  let ev: TestEvidence;
  let audit: AuditLog;
  let entries: AuditEntry[];

  beforeAll(async () => {
    t = await createTestDatabase('audit');
  });
  afterAll(async () => {
    await t.drop();
  });

  beforeEach(async () => {
    ev = await createEvidence();
    audit = await openAuditLog({ evidenceDir: ev.evidenceDir, signingKeyPath: ev.signingKey, anchor: databaseAnchor(t.db) });
    entries = [];
    for (let i = 1; i <= 6; i++)
      entries.push(await appendNote(audit, { label: `entry-${i}`, rows: { 'public.users': i } }, { runId: `run-${i}` }));
  });
  afterEach(async () => {
    await ev.cleanup();
  });

  const verify = (options: { anchor?: boolean; expectHead?: { seq: number; hash: string } } = {}): Promise<VerifyResult> =>
    verifyLog({ evidenceDir: ev.evidenceDir, anchor: options.anchor ? databaseAnchor(t.db) : null, expectHead: options.expectHead });

  it('accepts a clean log, against the database anchor too', async () => {
    const result = await verify({ anchor: true });
    expect(result).toMatchObject({
      ok: true,
      entries: 6,
      head: { seq: 6, hash: entries[5]!.hash },
      keys: [ev.keyId],
      logId: entries[0]!.hash,
    });
    expect(result.anchor).toEqual({ seq: 6, hash: entries[5]!.hash });
    expect(result.firstBad).toBeUndefined();
    expect(result.warnings).toEqual([]);
  });

  it('accepts an empty or missing log with 0 entries', async () => {
    rmSync(auditLogPath(ev.evidenceDir));
    expect(await verify()).toMatchObject({ ok: true, entries: 0, head: null });
    writeLogLines(ev.evidenceDir, []);
    expect(await verify()).toMatchObject({ ok: true, entries: 0, head: null });
  });

  it('names an old entry with one changed byte in its body: hash-mismatch', async () => {
    const lines = logLines(ev.evidenceDir);
    lines[1] = lines[1]!.replace('"public.users":2', '"public.users":3');
    writeLogLines(ev.evidenceDir, lines);
    const result = await verify();
    expect(result).toMatchObject({ ok: false, entries: 1, head: { seq: 1 }, firstBad: { seq: 2, line: 2, reason: 'hash-mismatch' } });
    expect(result.firstBad!.detail).toMatch(/changed after signing/);
  });

  it('catches a byte that only changes the formatting (not canonical JSON)', async () => {
    const lines = logLines(ev.evidenceDir);
    lines[2] = lines[2]!.replace('{"label"', '{ "label"');
    writeLogLines(ev.evidenceDir, lines);
    expect((await verify()).firstBad).toMatchObject({
      seq: 3,
      line: 3,
      reason: 'hash-mismatch',
      detail: expect.stringMatching(/canonical/),
    });
    lines[2] = `${lines[2]!.replace('{ "label"', '{"label"')}\r`;
    writeLogLines(ev.evidenceDir, lines);
    expect((await verify()).firstBad).toMatchObject({ seq: 3, line: 3, reason: 'hash-mismatch' });
  });

  it('names a changed signature: bad-signature', async () => {
    const lines = logLines(ev.evidenceDir);
    const sig = entries[3]!.sig;
    lines[3] = lines[3]!.replace(sig, `${sig.slice(0, 10)}${sig[10] === '0' ? '1' : '0'}${sig.slice(11)}`);
    writeLogLines(ev.evidenceDir, lines);
    expect((await verify()).firstBad).toMatchObject({ seq: 4, line: 4, reason: 'bad-signature' });
  });

  it('names the entry after a deleted one: seq-gap', async () => {
    const lines = logLines(ev.evidenceDir);
    lines.splice(2, 1);
    writeLogLines(ev.evidenceDir, lines);
    const result = await verify();
    expect(result.firstBad).toMatchObject({ seq: 4, line: 3, reason: 'seq-gap' });
    expect(result.firstBad!.detail).toMatch(/expected entry 3, found entry 4: entry 3 is missing/);
  });

  it('names two swapped entries', async () => {
    const lines = logLines(ev.evidenceDir);
    [lines[2], lines[3]] = [lines[3]!, lines[2]!];
    writeLogLines(ev.evidenceDir, lines);
    expect((await verify()).firstBad).toMatchObject({ seq: 4, line: 3, reason: 'seq-gap' });
  });

  it('names a duplicated entry', async () => {
    const lines = logLines(ev.evidenceDir);
    lines.splice(3, 0, lines[2]!);
    writeLogLines(ev.evidenceDir, lines);
    const result = await verify();
    expect(result.firstBad).toMatchObject({ seq: 3, line: 4, reason: 'seq-gap' });
    expect(result.firstBad!.detail).toMatch(/found entry 3 again/);
  });

  it('catches a re-sequenced entry whose prev no longer links: broken-link', async () => {
    // Entry 4 re-signed (with the real key) to sit where entry 3 was: seq fits, prev does not.
    const key = await loadSigningKey({ signingKeyPath: ev.signingKey, evidenceDir: ev.evidenceDir });
    const forged = signEntry({ seq: 3, prev: entries[2]!.hash, kind: NOTE_KIND, body: entries[3]!.body }, key);
    const lines = logLines(ev.evidenceDir);
    lines.splice(2, 1, forged.line);
    writeLogLines(ev.evidenceDir, lines);
    expect((await verify()).firstBad).toMatchObject({ seq: 3, line: 3, reason: 'broken-link' });
  });

  it('detects the last two entries cut off, against the database anchor and against --expect-head', async () => {
    writeLogLines(ev.evidenceDir, logLines(ev.evidenceDir).slice(0, 4));
    // Without a head remembered elsewhere a shorter chain is still a valid chain.
    expect(await verify()).toMatchObject({ ok: true, entries: 4 });

    const anchored = await verify({ anchor: true });
    expect(anchored).toMatchObject({ ok: false, entries: 4, head: { seq: 4 }, firstBad: { seq: 5, line: 5, reason: 'truncated' } });
    expect(anchored.firstBad!.detail).toMatch(/database anchor records head 6:.*entries 5…6 are missing/);

    const expected = await verify({ expectHead: { seq: 6, hash: entries[5]!.hash } });
    expect(expected.firstBad).toMatchObject({ seq: 5, line: 5, reason: 'truncated', detail: expect.stringMatching(/--expect-head/) });
    expect((await verify({ expectHead: { seq: 4, hash: entries[3]!.hash } })).ok).toBe(true);
  });

  it('detects a rewritten entry at the anchored head: broken-link', async () => {
    expect(
      (await verify({ expectHead: { seq: 5, hash: entries[4]!.hash.replace(/^./, (c) => (c === 'a' ? 'b' : 'a')) } })).firstBad,
    ).toMatchObject({
      seq: 5,
      line: 5,
      reason: 'broken-link',
    });
  });

  it('names an entry re-signed with a key that is not in keys/: unknown-key', async () => {
    const intruder = newKeyPair();
    const forged = signEntry(
      { seq: 3, prev: entries[1]!.hash, kind: NOTE_KIND, body: { label: 'nothing to see' }, runId: 'run-3' },
      intruder,
    );
    const lines = logLines(ev.evidenceDir);
    lines[2] = forged.line;
    writeLogLines(ev.evidenceDir, lines);
    const result = await verify();
    expect(result.firstBad).toMatchObject({ seq: 3, line: 3, reason: 'unknown-key' });
    expect(result.firstBad!.detail).toContain(`key ${intruder.keyId} is not in keys/`);
  });

  it('names a line of garbage: malformed', async () => {
    const lines = logLines(ev.evidenceDir);
    lines.splice(2, 0, 'this is not json');
    writeLogLines(ev.evidenceDir, lines);
    expect((await verify()).firstBad).toMatchObject({ seq: 3, line: 3, reason: 'malformed', detail: expect.stringMatching(/not JSON/) });
  });

  it('names a JSON line that is not an entry: malformed', async () => {
    const lines = logLines(ev.evidenceDir);
    lines[4] = JSON.stringify({ ...entries[4], extra: true });
    writeLogLines(ev.evidenceDir, lines);
    expect((await verify()).firstBad).toMatchObject({
      seq: 5,
      line: 5,
      reason: 'malformed',
      detail: expect.stringMatching(/unexpected member "extra"/),
    });
  });

  it('reports a last line cut in the middle: truncated', async () => {
    const lines = logLines(ev.evidenceDir);
    writeLogLines(ev.evidenceDir, lines.slice(0, 5));
    appendFileSync(auditLogPath(ev.evidenceDir), lines[5]!.slice(0, 40));
    expect((await verify()).firstBad).toMatchObject({ seq: 6, line: 6, reason: 'truncated' });
  });

  it('warns when the log was emptied or replaced under a new genesis while the database anchored the old one', async () => {
    writeLogLines(ev.evidenceDir, []);
    const emptied = await verify({ anchor: true });
    expect(emptied).toMatchObject({ ok: true, entries: 0 });
    expect(emptied.warnings.join('\n')).toMatch(/anchors \d+ other log\(s\).*it was emptied/);

    const fresh = await openAuditLog({ evidenceDir: ev.evidenceDir, signingKeyPath: ev.signingKey });
    await appendNote(fresh, { label: 'a new beginning' });
    const replaced = await verify({ anchor: true });
    expect(replaced).toMatchObject({ ok: true, entries: 1, anchor: null });
    expect(replaced.warnings.join('\n')).toMatch(/no chain head for this log[^]*it was replaced/);
  });

  it('warns, without failing, when the database cannot be read', async () => {
    const gone = await createTestDatabase('gone');
    await gone.drop();
    const db = createDb(gone.url, { maxConnections: 1 });
    try {
      const result = await verifyLog({ evidenceDir: ev.evidenceDir, anchor: databaseAnchor(db) });
      expect(result).toMatchObject({ ok: true, entries: 6, anchor: null });
      expect(result.warnings.join('\n')).toMatch(/Could not read the chain head/);
    } finally {
      await db.destroy();
    }
  });

  it("in 'head' mode still catches a rewritten tail whose signatures were forged under the real key id", async () => {
    const intruder = { keyId: ev.keyId, privateKey: newKeyPair().privateKey };
    const lines = logLines(ev.evidenceDir);
    let prev = entries[1]!.hash;
    for (let seq = 3; seq <= 6; seq++) {
      const body = seq === 3 ? { label: 'nothing to see', rows: { 'public.users': 8 } } : entries[seq - 1]!.body;
      const forged = signEntry({ seq, prev, kind: NOTE_KIND, body, runId: `run-${seq}` }, intruder);
      lines[seq - 1] = forged.line;
      prev = forged.entry.hash;
    }
    writeLogLines(ev.evidenceDir, lines);
    const head = await verifyLog({ evidenceDir: ev.evidenceDir, signatures: 'head' });
    expect(head.firstBad).toMatchObject({ seq: 6, reason: 'bad-signature' });
    expect((await verify()).firstBad).toMatchObject({ seq: 3, reason: 'bad-signature' });
    lines[1] = lines[1]!.replace('"public.users":2', '"public.users":3');
    writeLogLines(ev.evidenceDir, lines);
    expect((await verifyLog({ evidenceDir: ev.evidenceDir, signatures: 'head' })).firstBad).toMatchObject({
      seq: 2,
      reason: 'hash-mismatch',
    });
  });
});
