import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { databaseAnchor, openAuditLog } from '../src/audit/log.js';
import type { AuditEntry } from '../src/audit/types.js';
import { parseJson, runCli } from './helpers/cli.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { logLines, writeLogLines } from './helpers/evidence.js';
import { appendNote } from './helpers/note-kind.js';

interface VerifyJson {
  ok: boolean;
  entries: number;
  head: { seq: number; hash: string } | null;
  firstBad?: { seq: number; line: number; reason: string; detail: string };
}

describe('safe-run keygen and verify (CLI)', () => {
  let t: TestDatabase;
  let dir: string;
  let env: Record<string, string>;
  const evidenceDir = (): string => path.join(dir, 'evidence');
  const signingKey = (): string => path.join(dir, 'home', 'signing.key');

  beforeAll(async () => {
    t = await createTestDatabase('auditcli');
  });
  afterAll(async () => {
    await t.drop();
  });
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'safe-run-audit-cli-'));
    env = { SAFE_RUN_EVIDENCE_DIR: evidenceDir(), SAFE_RUN_SIGNING_KEY: signingKey() };
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  async function appendSome(n: number, anchorDb = false): Promise<AuditEntry[]> {
    const audit = await openAuditLog({
      evidenceDir: evidenceDir(),
      signingKeyPath: signingKey(),
      anchor: anchorDb ? databaseAnchor(t.db) : null,
    });
    const out: AuditEntry[] = [];
    for (let i = 1; i <= n; i++) out.push(await appendNote(audit, { i }));
    return out;
  }

  it('keygen creates a key once (exit 0), then refuses to overwrite it (exit 2)', async () => {
    const first = await runCli(['keygen', '--json'], { cwd: dir, env });
    expect(first.exitCode).toBe(0);
    const created = parseJson<{ keyId: string; privateKeyPath: string; publicKeyPath: string }>(first);
    expect(created).toEqual({
      keyId: expect.stringMatching(/^[0-9a-f]{16}$/),
      privateKeyPath: signingKey(),
      publicKeyPath: path.join(evidenceDir(), 'keys', `${created.keyId}.pub`),
    });

    const again = await runCli(['keygen'], { cwd: dir, env });
    expect(again.exitCode).toBe(2);
    expect(again.stderr).toContain('already exists');

    const rotated = await runCli(['keygen', '--rotate', '--json'], { cwd: dir, env });
    expect(rotated.exitCode).toBe(0);
    expect(parseJson(rotated)).toMatchObject({ previousKeyId: created.keyId, rotateEntrySeq: 1 });
  });

  it('keygen --rotate refuses a private key that others can read (exit 2, with the chmod)', async () => {
    expect((await runCli(['keygen'], { cwd: dir, env })).exitCode).toBe(0);
    chmodSync(signingKey(), 0o644);
    const result = await runCli(['keygen', '--rotate'], { cwd: dir, env });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain(`chmod 600 ${signingKey()}`);
  });

  it('verify: exit 0 on a clean log, exit 5 naming the entry on a tampered one', async () => {
    expect((await runCli(['keygen'], { cwd: dir, env })).exitCode).toBe(0);
    // No log and no anchor: nothing to verify is a configuration problem, and it says where it looked.
    const empty = await runCli(['verify', '--json'], { cwd: dir, env });
    expect(empty.exitCode).toBe(2);
    expect(empty.stderr).toMatch(/No audit log at .*audit\.jsonl and .*no database/);

    const entries = await appendSome(4);
    const clean = await runCli(['verify', '--json'], { cwd: dir, env });
    expect(clean.exitCode).toBe(0);
    const json = parseJson<VerifyJson>(clean);
    expect(json).toMatchObject({ ok: true, entries: 4, head: { seq: 4, hash: entries[3]!.hash } });
    expect(json.firstBad).toBeUndefined();
    const human = await runCli(['verify'], { cwd: dir, env });
    expect(human.stdout).toMatch(
      new RegExp(`^OK: 4 entries, head 4:${entries[3]!.hash}, signed by keys [0-9a-f]{16}\n  trust: first use of entry 1's key`),
    );

    const lines = logLines(evidenceDir());
    lines[1] = lines[1]!.replace('"i":2', '"i":7');
    writeLogLines(evidenceDir(), lines);
    const bad = await runCli(['verify', '--json'], { cwd: dir, env });
    expect(bad.exitCode).toBe(5);
    expect(parseJson<VerifyJson>(bad)).toMatchObject({
      ok: false,
      entries: 1,
      firstBad: { seq: 2, line: 2, reason: 'hash-mismatch', detail: expect.any(String) },
    });
    const told = await runCli(['verify'], { cwd: dir, env });
    expect(told.exitCode).toBe(5);
    expect(told.stdout).toMatch(/^TAMPERED: entry 2 \(line 2\): hash-mismatch — /);
    expect(told.stdout).toContain('next: ');
  });

  it('verify checks the tail against the database anchor and --expect-head', async () => {
    expect((await runCli(['keygen'], { cwd: dir, env })).exitCode).toBe(0);
    const entries = await appendSome(5, true);
    writeLogLines(evidenceDir(), logLines(evidenceDir()).slice(0, 3));

    const noDb = await runCli(['verify', '--json'], { cwd: dir, env });
    expect(noDb.exitCode).toBe(0);

    const withDb = await runCli(['verify', '--json', '--db', t.url], { cwd: dir, env });
    expect(withDb.exitCode).toBe(5);
    expect(parseJson<VerifyJson>(withDb).firstBad).toMatchObject({ seq: 4, line: 4, reason: 'log-behind-anchor' });

    const viaEnv = await runCli(['verify'], { cwd: dir, env: { ...env, DATABASE_URL: t.url } });
    expect(viaEnv.exitCode).toBe(5);
    expect(viaEnv.stdout).toMatch(
      /^TAMPERED: entry 4 \(line 4\): log-behind-anchor — the database anchors this log .* at entry 5 .* ends at entry 3/,
    );

    const expected = await runCli(['verify', '--json', '--expect-head', `5:${entries[4]!.hash}`], { cwd: dir, env });
    expect(expected.exitCode).toBe(5);
    expect(parseJson<VerifyJson>(expected).firstBad).toMatchObject({ seq: 4, reason: 'truncated' });
  });

  it('verify still checks the file when the database is unreachable, with a warning', async () => {
    expect((await runCli(['keygen'], { cwd: dir, env })).exitCode).toBe(0);
    await appendSome(2);
    const result = await runCli(['verify', '--json', '--db', 'postgres://nobody@127.0.0.1:1/none'], { cwd: dir, env });
    expect(result.exitCode).toBe(0);
    expect(parseJson<VerifyJson>(result)).toMatchObject({ ok: true, entries: 2 });
    expect(result.stderr).toMatch(/Could not read the chain head/);
  });

  it('verify rejects a malformed --expect-head with exit 2', async () => {
    const result = await runCli(['verify', '--expect-head', '5:nothex'], { cwd: dir, env });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('--expect-head must be SEQ:HASH');
  });
});
