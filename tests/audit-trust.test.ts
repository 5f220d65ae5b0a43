import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { signEntry } from '../src/audit/entry.js';
import { generateSigningKey, newKeyPair, publishPublicKey } from '../src/audit/keys.js';
import { auditLogPath } from '../src/audit/read.js';
import { GENESIS_PREV, type AuditEntry } from '../src/audit/types.js';
import { verifyLog } from '../src/audit/verify.js';
import { parseJson, runCli } from './helpers/cli.js';
import { countRows } from './helpers/db.js';
import { logLines, writeLogLines } from './helpers/evidence.js';
import { createWorkspace, type Workspace } from './helpers/workspace.js';
import { NOTE_KIND } from './helpers/note-kind.js';

interface VerifyJson {
  readonly ok: boolean;
  readonly entries: number;
  readonly firstBad?: { readonly seq: number; readonly reason: string; readonly detail: string };
  readonly trust: { readonly mode: string; readonly pinned: readonly string[] };
}

const mode = (file: string): string => (statSync(file).mode & 0o777).toString(8);

/** Each attack is what a script (or its author) would do to hide what it did. */
describe('trusting the log', () => {
  let ws: Workspace;
  beforeEach(async () => {
    ws = await createWorkspace();
  });
  afterEach(async () => {
    await ws.cleanup();
  });

  const snapshots = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) expect((await ws.cli(['snapshot', '--label', `s${i}`])).exitCode).toBe(0);
  };
  const reason = async (args: string[]): Promise<{ code: number; text: string }> => {
    const r = await ws.cli(args);
    return { code: r.exitCode, text: `${r.stdout}\n${r.stderr}` };
  };

  it('refuses a cut, emptied or removed log in verify, check, log, blame and show (exit 5 log-behind-anchor)', async () => {
    await snapshots(3);
    const lines = logLines(ws.evidenceDir);
    const attacks: [string, () => void][] = [
      ['cut', () => writeLogLines(ws.evidenceDir, lines.slice(0, 2))],
      ['emptied', () => writeLogLines(ws.evidenceDir, [])],
      ['removed', () => rmSync(auditLogPath(ws.evidenceDir))],
    ];
    for (const [, attack] of attacks) {
      attack();
      const verify = await ws.cli(['verify', '--json']);
      expect(verify.exitCode).toBe(5);
      expect(parseJson<VerifyJson>(verify).firstBad).toMatchObject({ reason: 'log-behind-anchor' });
      for (const args of [['blame', 'users'], ['check'], ['show', '01ABC'], ['log']]) {
        const r = await reason(args);
        expect({ args, code: r.code }).toEqual({ args, code: 5 });
        expect(r.text).toMatch(/log-behind-anchor/);
      }
      writeLogLines(ws.evidenceDir, lines);
    }
    expect((await ws.cli(['verify'])).exitCode).toBe(0);
  });

  it('says where it looked when there is no log and no anchor (exit 2)', async () => {
    for (const args of [['verify'], ['log'], ['blame', 'users']]) {
      const r = await reason(args);
      expect(r.code).toBe(2);
      expect(r.text).toContain(auditLogPath(ws.evidenceDir));
      expect(r.text).toMatch(/no chain head for it in the database postgres/);
    }
  });

  it('refuses a log re-signed from entry 1 with a key dropped into keys/ (untrusted-key)', async () => {
    await snapshots(3);
    const honest = JSON.parse(readFileSync(auditLogPath(ws.evidenceDir), 'utf8').split('\n')[0]!) as AuditEntry;
    const attacker = newKeyPair();
    await publishPublicKey(ws.evidenceDir, attacker.publicKey);
    let prev = GENESIS_PREV;
    const forged = logLines(ws.evidenceDir).map((text) => {
      const e = JSON.parse(text) as AuditEntry;
      const { entry, line } = signEntry({ seq: e.seq, prev, kind: e.kind, body: e.body, runId: e.runId, ts: e.ts }, attacker);
      prev = entry.hash;
      return line;
    });
    writeLogLines(ws.evidenceDir, forged);

    const withAnchor = await ws.cli(['verify', '--json']);
    expect(withAnchor.exitCode).toBe(5);
    expect(parseJson<VerifyJson>(withAnchor).firstBad).toMatchObject({
      seq: 1,
      reason: 'untrusted-key',
      detail: expect.stringContaining(attacker.keyId),
    });

    // Only trustedKeys (no database): the pin outside the evidence directory is enough.
    expect(await verifyLog({ evidenceDir: ws.evidenceDir, trustedKeys: [honest.keyId] })).toMatchObject({
      ok: false,
      firstBad: { seq: 1, reason: 'untrusted-key' },
    });
    // Neither: trust on first use, and the result says so.
    expect(await verifyLog({ evidenceDir: ws.evidenceDir })).toMatchObject({ ok: true, trust: { mode: 'first-use', pinned: [] } });
  });

  it('keeps verify at 0 through keygen --rotate and keygen --add (a second host signing too)', async () => {
    await snapshots(1);
    expect((await ws.cli(['keygen', '--rotate'])).exitCode).toBe(0);
    await snapshots(1);
    const other = mkdtempSync(path.join(os.tmpdir(), 'safe-run-host-b-'));
    try {
      const b = await generateSigningKey({ signingKeyPath: path.join(other, 'b.key'), evidenceDir: path.join(other, 'ev') });
      const add = await ws.cli(['keygen', '--add', b.publicKeyPath]);
      expect(add.exitCode).toBe(0);
      expect(existsSync(path.join(ws.evidenceDir, 'keys', `${b.keyId}.pub`))).toBe(true);
      const hostB = await runCli(['snapshot', '--label', 'host-b'], {
        cwd: ws.cwd,
        env: { ...ws.env, SAFE_RUN_SIGNING_KEY: path.join(other, 'b.key') },
      });
      expect(hostB.exitCode).toBe(0);
      await snapshots(1);
      const verify = await ws.cli(['verify', '--json']);
      expect(verify.exitCode).toBe(0);
      expect(parseJson<VerifyJson>(verify)).toMatchObject({ ok: true, entries: 6, trust: { mode: 'pinned' } });
      expect(logLines(ws.evidenceDir).filter((l) => l.includes(`"keyId":"${b.keyId}"`))).toHaveLength(1);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it('gives each head to a witness; verify --witness catches a cut of both the log and the anchor', async () => {
    const witnessFile = path.join(ws.cwd, 'witness.jsonl');
    ws.writeConfig({ witness: [{ command: `tee -a ${witnessFile}` }] });
    await snapshots(3);
    const heads = readFileSync(witnessFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(heads.map((h) => h.seq)).toEqual([1, 2, 3]);
    expect(Object.keys(heads[0]!).sort()).toEqual(['hash', 'keyId', 'logId', 'seq', 'sig', 'ts']);
    expect((await ws.cli(['verify', '--witness', witnessFile])).exitCode).toBe(0);

    const lines = logLines(ws.evidenceDir);
    writeLogLines(ws.evidenceDir, lines.slice(0, 2));
    const second = JSON.parse(lines[1]!) as AuditEntry;
    await sql`update safe_run.chain_head set seq = 2, hash = ${second.hash}`.execute(ws.t.db);
    expect((await ws.cli(['verify'])).exitCode).toBe(0);
    const witnessed = await ws.cli(['verify', '--json', '--witness', witnessFile]);
    expect(witnessed.exitCode).toBe(5);
    expect(parseJson<VerifyJson>(witnessed).firstBad).toMatchObject({ seq: 3, reason: 'witness-mismatch' });
  });

  it('lets a run commit past a failing optional witness, remembers it and retries it at the next append', async () => {
    const witnessFile = path.join(ws.cwd, 'witness.jsonl');
    ws.writeConfig({ witness: [{ command: 'false' }] });
    const run = await ws.cli(['cleanup-invalid-sessions', '--json']);
    expect(run.exitCode).toBe(0);
    expect(parseJson<{ status: string }>(run).status).toBe('committed');
    const check = await ws.cli(['check', '--json']);
    expect(check.exitCode).toBe(0);
    expect(parseJson<{ status: string; findings: { kind: string }[] }>(check)).toMatchObject({
      status: 'clean',
      findings: [{ kind: 'witness-failed' }],
    });
    expect((await ws.cli(['doctor'])).stdout).toMatch(/WARN\s+witness/);

    ws.writeConfig({ witness: [{ command: `tee -a ${witnessFile}` }] });
    await snapshots(1);
    expect(readFileSync(witnessFile, 'utf8').trim().split('\n')).toHaveLength(1);
    expect(parseJson<{ findings: unknown[] }>(await ws.cli(['check', '--json'])).findings).toEqual([]);
  });

  it('fails a guarded run whose required witness fails (exit 5), with the database unchanged', async () => {
    ws.writeConfig({ witness: [{ command: 'false', required: true }] });
    const before = await countRows(ws.t.db, 'oidc_models');
    const run = await ws.cli(['cleanup-invalid-sessions']);
    expect(run.exitCode).toBe(5);
    expect(run.stderr).toMatch(/required witness/);
    expect(await countRows(ws.t.db, 'oidc_models')).toBe(before);
  });

  it('fails verify when time goes backwards (time-order)', async () => {
    await snapshots(2);
    const lines = logLines(ws.evidenceDir);
    const key = newKeyPair();
    await publishPublicKey(ws.evidenceDir, key.publicKey);
    const first = signEntry({ seq: 1, prev: GENESIS_PREV, kind: NOTE_KIND, body: {}, ts: '2030-01-01T00:00:00.000Z' }, key);
    const second = signEntry({ seq: 2, prev: first.entry.hash, kind: NOTE_KIND, body: {}, ts: '2029-01-01T00:00:00.000Z' }, key);
    writeLogLines(ws.evidenceDir, [first.line, second.line]);
    expect(await verifyLog({ evidenceDir: ws.evidenceDir })).toMatchObject({ ok: false, firstBad: { seq: 2, reason: 'time-order' } });
    writeLogLines(ws.evidenceDir, lines);
  });

  it('refuses a symlinked audit.jsonl for reads and appends (exit 5)', async () => {
    await snapshots(1);
    const file = auditLogPath(ws.evidenceDir);
    const elsewhere = path.join(ws.cwd, 'elsewhere.jsonl');
    renameSync(file, elsewhere);
    symlinkSync(elsewhere, file);
    for (const args of [['verify'], ['snapshot']]) {
      const r = await reason(args);
      expect(r.code).toBe(5);
      expect(r.text).toMatch(/is a symbolic link/);
    }
  });

  it('keeps the evidence owner-only: directory 0700, log and backup 0600', async () => {
    expect((await ws.cli(['cleanup-invalid-sessions'])).exitCode).toBe(0);
    expect(mode(ws.evidenceDir)).toBe('700');
    expect(mode(auditLogPath(ws.evidenceDir))).toBe('600');
    const backups = path.join(ws.evidenceDir, 'backups');
    expect(mode(backups)).toBe('700');
    const dumps = readdirNames(backups);
    expect(dumps.length).toBeGreaterThan(0);
    for (const d of dumps) expect(mode(path.join(backups, d))).toBe('600');
    writeFileSync(path.join(backups, 'loose.dump'), 'x', { mode: 0o644 });
    expect((await ws.cli(['doctor'])).stdout).toMatch(/WARN\s+evidence-modes .*loose\.dump 0644/);
  });
});

function readdirNames(dir: string): string[] {
  return readdirSync(dir);
}
