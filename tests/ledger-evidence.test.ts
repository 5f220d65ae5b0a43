import { existsSync, readFileSync, statSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import { createDb } from '../src/db/connection.js';
import { withDatabase } from '../src/db/url.js';
import type { BlameResult } from '../src/blame/blame.js';
import type { DoctorReport } from '../src/commands/doctor.js';
import type { CheckResult } from '../src/history/check.js';
import type { RunOutcomeBody, LedgerSealBody } from '../src/records/index.js';
import { parseJson } from './helpers/cli.js';
import { recreateTestDatabase, serverUrl } from './helpers/db.js';
import { logLines } from './helpers/evidence.js';
import { rules, runJson, sqlScript, tsScript, waitFor } from './helpers/attacks.js';
import { createWorkspace, type Workspace } from './helpers/workspace.js';

/**
 * The ledger inside the evidence: guarded runs with protection installed, sealing into the
 * signed log, tampering, disabled triggers, and a database dropped and recreated. Real
 * server, built CLI.
 */
const entries = (ws: Workspace): { kind: string; body: unknown; seq: number }[] =>
  existsSync(path.join(ws.evidenceDir, 'audit.jsonl'))
    ? logLines(ws.evidenceDir).map((l) => JSON.parse(l) as { kind: string; body: unknown; seq: number })
    : [];

describe('the change ledger in the evidence', () => {
  let ws: Workspace;
  beforeEach(async () => {
    ws = await createWorkspace({ criticalTables: { users: { maxDropPercent: 50 } } });
    expect((await ws.cli(['protect', 'users', 'oidc_models', '--keep-rows'])).exitCode).toBe(0);
  });
  afterEach(async () => {
    await ws.cleanup();
  });

  it('lets a guarded run write to protected tables: its own ledger rows are allowed, counted and agree with its measured changes', async () => {
    const cleanup = runJson(await ws.cli(['cleanup-invalid-sessions', '--json']));
    expect({ exit: cleanup.exitCode, status: cleanup.status, violations: cleanup.violations }).toEqual({
      exit: 0,
      status: 'committed',
      violations: [],
    });
    const deleted = cleanup.changes['public.oidc_models']!.deleted;
    expect(deleted).toBeGreaterThan(0);
    const outcome = entries(ws).find((e) => e.kind === 'run.outcome')!.body as RunOutcomeBody;
    expect(outcome.ledger).toEqual({ statements: expect.any(Number), keptRows: deleted, disagreements: [] });
    expect(outcome.ledger!.statements).toBeGreaterThan(0);
    const shown = await ws.cli(['show', cleanup.runId]);
    expect(shown.stdout).toMatch(/ledger {4}\d+ statement\(s\), \d+ row\(s\) kept; agrees with the measured changes/);

    // The run's statements were sealed after its commit; blame gives the change to the run, not to a session.
    const seal = entries(ws)
      .filter((e) => e.kind === 'ledger.seal')
      .at(-1)!.body as LedgerSealBody;
    expect(seal.count).toBe(outcome.ledger!.statements);
    const blame = parseJson<BlameResult>(await ws.cli(['blame', 'oidc_models', '--json']));
    expect(blame.changes.map((c) => c.attribution.type)).toEqual(['run']);

    // A script that writes to the ledger itself (hidden from the static policy) is still a
    // violation, beside its own ledger rows.
    const hidden = "do $$ begin execute 'delete from safe_' || 'run.ledger_rows'; end $$";
    ws.writeScript('forge.sql', sqlScript(`delete from oidc_models where id = 'sess-valid-pro';\n${hidden};`));
    const keptBefore = await sql<{ n: number }>`select count(*)::int as n from safe_run.ledger_rows`.execute(ws.t.db);
    const forged = runJson(await ws.cli(['forge', '--json']));
    expect(forged.exitCode).toBe(3);
    // Refused by the gate when it sees the statement, by the evidence-schema guard when it does not.
    expect(['refused-statement', 'evidence-schema']).toContain(rules(forged)[0]);
    const keptAfter = await sql<{ n: number }>`select count(*)::int as n from safe_run.ledger_rows`.execute(ws.t.db);
    expect(keptAfter.rows[0]!.n).toBe(keptBefore.rows[0]!.n);
  });

  it("attributes another session's write during a run to that session, never to the run", async () => {
    ws.writeScript(
      'slow.ts',
      tsScript('slow', "await sql`delete from oidc_models where kind = 'Grant'`.execute(db); await sql`select pg_sleep(3)`.execute(db);"),
    );
    const run = ws.cli(['slow', '--json']);
    await waitFor(() => entries(ws).some((e) => e.kind === 'run.intent'));
    const other = createDb(ws.t.url, { applicationName: 'second-connection', maxConnections: 1 });
    const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(other);
    await sql`delete from users where email = 'free.user@example.com'`.execute(other);
    await other.destroy();
    const result = runJson(await run);
    expect(result.exitCode).toBe(0);
    expect(Object.keys(result.changes)).toEqual(['public.oidc_models']);

    const blame = parseJson<BlameResult>(await ws.cli(['blame', 'users', '--json']));
    const change = blame.changes.find((c) => c.before === 8 && c.after === 7)!;
    expect(change.attribution).toMatchObject({
      type: 'session',
      runId: result.runId,
      statements: [{ applicationName: 'second-connection', pid: rows[0]!.pid, op: 'DELETE', rows: 1 }],
    });
  });

  it('seals ledger rows into the signed log with 0600 copies; a deleted sealed row is ledger-tampered (check 10, verify 5)', async () => {
    expect((await ws.cli(['snapshot'])).exitCode).toBe(0);
    await sql`delete from users where email = 'pro.user@example.com'`.execute(ws.t.db);
    expect((await ws.cli(['snapshot'])).exitCode).toBe(0);
    const seal = entries(ws)
      .filter((e) => e.kind === 'ledger.seal')
      .at(-1)!;
    const body = seal.body as LedgerSealBody;
    expect(body.count).toBeGreaterThan(0);
    const { rows: sealed } = await sql<{ n: number }>`select count(*)::int as n from safe_run.ledger where sealed_in = ${seal.seq}`.execute(
      ws.t.db,
    );
    expect(sealed[0]!.n).toBe(body.count);
    const dir = path.join(ws.evidenceDir, 'ledger');
    for (const f of readdirSync(dir)) expect(statSync(path.join(dir, f)).mode & 0o777).toBe(0o600);
    // The delete's one row was kept inline in its ledger row; the sealed rows file has it all the same.
    const kept = readFileSync(path.join(ws.evidenceDir, body.rowsFile), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { ledger_id: number; side: string; row: { email: string } });
    expect(kept).toHaveLength(body.keptRows);
    expect(kept).toContainEqual(expect.objectContaining({ side: 'old', row: expect.objectContaining({ email: 'pro.user@example.com' }) }));

    expect(parseJson<CheckResult>(await ws.cli(['check', '--json'])).findings.filter((f) => f.kind.startsWith('ledger'))).toEqual([]);
    expect((await ws.cli(['verify'])).exitCode).toBe(0);

    // Covering one's tracks: the superuser deletes the ledger row of the delete.
    await sql`delete from safe_run.ledger_rows; delete from safe_run.ledger where operation = 'DELETE'`.execute(ws.t.db);
    const check = await ws.cli(['check', '--json']);
    expect(check.exitCode).toBe(10);
    expect(parseJson<CheckResult>(check).findings).toContainEqual(
      expect.objectContaining({ kind: 'ledger-tampered', detail: expect.stringContaining('deleted from safe_run.ledger') }),
    );
    const verify = await ws.cli(['verify', '--json']);
    expect(verify.exitCode).toBe(5);
    expect(parseJson<{ firstBad: { reason: string; seq: number } }>(verify).firstBad).toMatchObject({
      reason: 'ledger-tampered',
      seq: seal.seq,
    });
    // The sealed copy still names who deleted the user.
    const blame = parseJson<BlameResult>(await ws.cli(['blame', 'users', '--json']));
    expect(blame.changes.find((c) => c.before === 8 && c.after === 7)!.attribution).toMatchObject({
      type: 'session',
      statements: [{ op: 'DELETE', rows: 1 }],
    });
  });

  it('a disabled ledger trigger is a doctor failure and a check finding', async () => {
    const snap = await ws.cli(['snapshot']);
    expect({ exit: snap.exitCode, stderr: snap.stderr }).toEqual({ exit: 0, stderr: expect.any(String) });
    const ok = parseJson<DoctorReport>(await ws.cli(['doctor', '--json']));
    expect(ok.checks.find((c) => c.name === 'ledger')).toMatchObject({ ok: true, detail: expect.stringContaining('public.users') });

    await sql`alter table users disable trigger safe_run_ledger_delete`.execute(ws.t.db);
    const doctor = await ws.cli(['doctor', '--json']);
    expect(doctor.exitCode).toBe(2);
    expect(parseJson<DoctorReport>(doctor).checks.find((c) => c.name === 'ledger')).toMatchObject({
      ok: false,
      detail: expect.stringContaining('public.users: safe_run_ledger_delete disabled'),
    });
    const check = await ws.cli(['check', '--json']);
    expect(check.exitCode).toBe(10);
    expect(parseJson<CheckResult>(check).findings).toContainEqual(
      expect.objectContaining({ kind: 'ledger-trigger-disabled', table: 'public.users' }),
    );
  });

  it('a disabled event trigger, or one an older safe-run installed that is blind to DROP OWNED, is a finding until protect runs again', async () => {
    expect((await ws.cli(['snapshot'])).exitCode).toBe(0);
    await sql`alter event trigger safe_run_ledger_sql_drop disable`.execute(ws.t.db);
    // What an install from before DROP OWNED was watched left behind.
    await sql
      .raw(
        `drop event trigger safe_run_ledger_drop_start;
         create event trigger safe_run_ledger_drop_start on ddl_command_start when tag in ('DROP TABLE', 'DROP SCHEMA')
           execute function safe_run.ledger_drop_start();
         alter event trigger safe_run_ledger_drop_start enable always`,
      )
      .execute(ws.t.db);
    const doctor = await ws.cli(['doctor', '--json']);
    expect(doctor.exitCode).toBe(2);
    const detail = parseJson<DoctorReport>(doctor).checks.find((c) => c.name === 'ledger')!.detail;
    expect(detail).toContain('event trigger safe_run_ledger_sql_drop disabled: drops are not recorded');
    expect(detail).toContain('safe_run_ledger_drop_start is from an older install, blind to DROP OWNED');
    const check = await ws.cli(['check', '--json']);
    expect(check.exitCode).toBe(10);
    expect(parseJson<CheckResult>(check).findings.filter((f) => f.kind === 'ledger-trigger-disabled')).toHaveLength(2);

    expect((await ws.cli(['protect'])).exitCode).toBe(0);
    const after = parseJson<DoctorReport>(await ws.cli(['doctor', '--json']));
    expect(after.checks.find((c) => c.name === 'ledger')).toMatchObject({ ok: true });
  });

  it('after the database is dropped and recreated, blame answers from the sealed copies and names what was lost', async () => {
    expect((await ws.cli(['snapshot'])).exitCode).toBe(0);
    await sql`delete from users where email = 'pro.user@example.com'`.execute(ws.t.db);
    expect((await ws.cli(['snapshot'])).exitCode).toBe(0);
    // Written after the last seal: it goes with the database.
    await sql`delete from users where email = 'free.user@example.com'`.execute(ws.t.db);
    await ws.t.db.destroy();
    await recreateTestDatabase(ws.t.name);
    // The fresh copy has its 8 users back; take one away so blame has a change to explain.
    const fresh = createDb(withDatabase(serverUrl(), ws.t.name), { maxConnections: 1 });
    await sql`delete from users where email like '%rephlo.ai'`.execute(fresh);
    await fresh.destroy();

    const check = parseJson<CheckResult>(await ws.cli(['check', '--json']));
    expect(check.findings.map((f) => f.kind)).toContain('db-recreated');
    const blame = parseJson<BlameResult>(await ws.cli(['blame', 'users', '--json']));
    expect(blame.changes.find((c) => c.before === 8 && c.after === 7)!.attribution).toMatchObject({
      type: 'session',
      statements: [{ op: 'DELETE', rows: 1, statement: "delete from users where email = 'pro.user@example.com'" }],
    });
    expect(blame.changes.at(-1)).toMatchObject({ ledgerLost: expect.stringContaining('statements after its last seal') });
  });
});
