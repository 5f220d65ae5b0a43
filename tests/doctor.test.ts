import { sql } from 'kysely';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { databaseAnchor } from '../src/audit/anchor.js';
import { openAuditLog } from '../src/audit/log.js';
import type { DoctorReport } from '../src/commands/doctor.js';
import { parseJson, runCli, type CliResult } from './helpers/cli.js';
import { logLines, writeLogLines } from './helpers/evidence.js';
import { createWorkspace, type Workspace } from './helpers/workspace.js';
import { appendNote } from './helpers/note-kind.js';

/** `safe-run doctor` against a real server, real pg_dump/pg_restore and a real key. */
describe('safe-run doctor', () => {
  let ws: Workspace;
  beforeEach(async () => {
    ws = await createWorkspace();
  });
  afterEach(async () => {
    await ws.cleanup();
  });

  const cli = (args: readonly string[], env: Record<string, string> = {}): Promise<CliResult> =>
    runCli(args, { cwd: ws.cwd, env: { ...ws.env, ...env } });
  const check = (report: DoctorReport, name: string) => report.checks.find((c) => c.name === name)!;

  it('passes every check on a good setup, and never shows the password', async () => {
    // Trust authentication ignores the password, so it can be in the URL without breaking the connection.
    const url = new URL(ws.t.url);
    url.password = 'n0t-shown';
    const result = await ws.cli(['doctor', '--json', '--db', url.href]);
    expect(result.exitCode).toBe(0);
    const report = parseJson<DoctorReport>(result);
    expect(report.ok).toBe(true);
    expect(report.checks.map((c) => c.name)).toEqual([
      'database',
      'server-version',
      'createdb',
      'pg_dump',
      'pg_restore',
      'signing-key',
      'public-key',
      'evidence-dir',
      'audit-log',
      'disk-space',
      'evidence-modes',
      'witness',
      'script-role',
      'start-up',
    ]);
    expect(report.checks.filter((c) => !c.ok)).toEqual([]);
    // The test login is a superuser: doctor says what that costs and what to do.
    expect(check(report, 'script-role')).toMatchObject({ ok: true, warning: true });
    expect(check(report, 'script-role').hint).toContain('scriptRole');
    expect(check(report, 'pg_dump').detail).toMatch(/pg_dump \(version \d+/);
    expect(check(report, 'signing-key').detail).toContain('mode 0600');
    expect(check(report, 'createdb')).toMatchObject({ ok: true, detail: expect.stringContaining('may create databases') });
    expect(result.stdout + result.stderr).not.toContain('n0t-shown');
    // `safe-run` (bin/safe-run) starts from the start-up snapshot; `node dist/src/cli.js` is told what it misses.
    expect(check(report, 'start-up')).toMatchObject({ ok: true, detail: expect.stringContaining('cli.blob') });
    expect(check(report, 'start-up').warning).toBeUndefined();
    const direct = parseJson<DoctorReport>(
      await runCli(['doctor', '--json', '--db', url.href], { cwd: ws.cwd, env: ws.env, fromModules: true }),
    );
    expect(check(direct, 'start-up')).toMatchObject({ ok: true, warning: true, detail: expect.stringContaining('node dist/src/cli.js') });

    const text = await ws.cli(['doctor', '--db', url.href]);
    expect(text.exitCode).toBe(0);
    expect(text.stdout).toMatch(/^ {2}OK {4}database/m);
    expect(text.stdout).toContain('All checks passed.');
  });

  it('checks that scriptRole can read every declared and critical table, naming the GRANT', async () => {
    const role = `maint_${Date.now().toString(36)}`;
    await sql`create role ${sql.id(role)} login`.execute(ws.t.db);
    try {
      await sql`grant usage on schema public to ${sql.id(role)}`.execute(ws.t.db);
      await sql`grant select on oidc_models to ${sql.id(role)}`.execute(ws.t.db);
      ws.writeConfig({ scriptRole: role, criticalTables: { users: { maxDropPercent: 10 } } });
      const result = await ws.cli(['doctor', '--json']);
      expect(result.exitCode).toBe(2);
      const report = parseJson<DoctorReport>(result);
      expect(check(report, 'script-role')).toMatchObject({ ok: true, detail: expect.stringContaining('trust: role') });
      expect(check(report, 'script-role-select')).toMatchObject({ ok: false, detail: expect.stringContaining('public.users') });
      expect(check(report, 'script-role-select').hint).toContain(`GRANT SELECT ON public.users TO ${role}`);
    } finally {
      await sql`drop owned by ${sql.id(role)}`.execute(ws.t.db);
      await sql`drop role ${sql.id(role)}`.execute(ws.t.db);
    }
  });

  it('exits 2 with the keygen hint when the signing key is missing', async () => {
    rmSync(ws.env.SAFE_RUN_SIGNING_KEY!);
    const result = await ws.cli(['doctor', '--json']);
    expect(result.exitCode).toBe(2);
    const report = parseJson<DoctorReport>(result);
    expect(report.ok).toBe(false);
    expect(check(report, 'signing-key')).toMatchObject({ ok: false, hint: expect.stringContaining('safe-run keygen') });
    const text = await ws.cli(['doctor']);
    expect(text.stdout).toMatch(/FAIL {2}signing-key/);
    expect(text.stdout).toContain('next: Run `safe-run keygen`');
  });

  it('fails a key others can read, with the chmod hint', async () => {
    chmodSync(ws.env.SAFE_RUN_SIGNING_KEY!, 0o644);
    const result = await ws.cli(['doctor', '--json']);
    expect(result.exitCode).toBe(2);
    const key = check(parseJson<DoctorReport>(result), 'signing-key');
    expect(key.ok).toBe(false);
    expect(key.detail).toContain('0644');
    expect(key.hint).toContain(`chmod 600 ${ws.env.SAFE_RUN_SIGNING_KEY}`);
  });

  it('exits 5 for an evidence directory that cannot be created (root ignores modes, so a file is in the way)', async () => {
    const blocker = path.join(ws.cwd, 'not-a-dir');
    writeFileSync(blocker, '');
    const result = await cli(['doctor', '--json'], { SAFE_RUN_EVIDENCE_DIR: path.join(blocker, 'evidence') });
    expect(result.exitCode).toBe(5);
    const dir = check(parseJson<DoctorReport>(result), 'evidence-dir');
    expect(dir.ok).toBe(false);
    expect(dir.detail).toContain('ENOTDIR');
    expect(dir.hint).toBeTruthy();
  });

  it('exits 5 when the audit log does not verify, and names the entry', async () => {
    const audit = await openAuditLog({
      evidenceDir: ws.evidenceDir,
      signingKeyPath: ws.env.SAFE_RUN_SIGNING_KEY!,
      anchor: databaseAnchor(ws.t.db),
    });
    for (let i = 1; i <= 3; i++) await appendNote(audit, { label: `entry-${i}` });
    expect((await ws.cli(['doctor'])).exitCode).toBe(0);

    const lines = logLines(ws.evidenceDir);
    lines[1] = lines[1]!.replace('entry-2', 'entry-X');
    writeLogLines(ws.evidenceDir, lines);
    const result = await ws.cli(['doctor', '--json']);
    expect(result.exitCode).toBe(5);
    const log = check(parseJson<DoctorReport>(result), 'audit-log');
    expect(log.ok).toBe(false);
    expect(log.detail).toContain('entry 2');
    expect(log.hint).toContain('safe-run verify');
  });

  it('reports every failure and exits with the most severe: 5 over 2', async () => {
    const blocker = path.join(ws.cwd, 'file');
    writeFileSync(blocker, '');
    const unreachable = new URL(ws.t.url);
    unreachable.port = '1';
    unreachable.password = 'secret-pw';
    const result = await cli(['doctor', '--json', '--db', unreachable.href], { SAFE_RUN_EVIDENCE_DIR: path.join(blocker, 'ev') });
    expect(result.exitCode).toBe(5);
    const report = parseJson<DoctorReport>(result);
    expect(check(report, 'database')).toMatchObject({ ok: false, exitCode: 2 });
    expect(check(report, 'database').detail).toContain('connection refused');
    expect(check(report, 'evidence-dir')).toMatchObject({ ok: false, exitCode: 5 });
    expect(result.stdout + result.stderr).not.toContain('secret-pw');
  });

  it('documents the exit codes in --help', async () => {
    const help = await ws.cli(['doctor', '--help']);
    expect(help.exitCode).toBe(0);
    expect(help.stdout).toContain('5 over 4 over 2');
  });
});
