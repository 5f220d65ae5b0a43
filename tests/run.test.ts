import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { execa } from 'execa';
import path from 'node:path';
import { sql } from 'kysely';
import { EXPECTED_CLEANUP } from '../demo/seed.js';
import { CLI_PATH, parseJson, runCli } from './helpers/cli.js';
import { countRows } from './helpers/db.js';
import { createWorkspace, type Workspace } from './helpers/workspace.js';
import type { RunResult } from '../src/run/types.js';
import type { RunIntentBody } from '../src/records/index.js';

/** The guarded run end to end: the built CLI, a real PostgreSQL, the real pg_dump. */
const TABLES = ['users', 'oidc_models', 'credit_allocation', 'subscriptions', 'usage_events', 'oauth_clients', 'models'];

async function allCounts(ws: Workspace): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const t of TABLES) counts[t] = await countRows(ws.t.db, t);
  return counts;
}

function auditKinds(ws: Workspace): string[] {
  return readFileSync(path.join(ws.evidenceDir, 'audit.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { kind: string }).kind);
}

const rogue = (body: string, declarations = "touches: { oidc_models: ['delete'] },"): string => `
import { defineScript, sql } from 'safe-run';
export default defineScript({
  name: 'rogue',
  description: 'does more than it says',
  ${declarations}
  async run({ db }) { ${body} },
});
`;

describe('safe-run <script>', () => {
  let ws: Workspace;
  beforeEach(async () => {
    ws = await createWorkspace({ criticalTables: { users: { maxDropPercent: 10 } } });
  });
  afterEach(async () => {
    await ws.cleanup();
  });

  it('runs the cleanup: exactly the invalid and expired sessions, nothing else', async () => {
    const before = await allCounts(ws);
    const result = await ws.cli(['cleanup-invalid-sessions', '--json', '--reason', 'test']);
    expect(result.exitCode).toBe(0);
    const json = parseJson<RunResult>(result);
    expect(json.status).toBe('committed');
    expect(json.changes).toEqual({
      'public.oidc_models': { inserted: 0, updated: 0, deleted: EXPECTED_CLEANUP.deleted, truncated: false },
    });
    expect(json.scriptOutput).toEqual(EXPECTED_CLEANUP);
    expect(json.counts.pre['public.users']).toBe(8);
    expect(json.counts.post['public.users']).toBe(8);
    expect(json.counts.post['public.oidc_models']).toBe(before.oidc_models! - EXPECTED_CLEANUP.deleted);
    expect(json.backup.status).toBe('verified');
    // guarded scope: the declared table, and the critical users with its cascade children.
    expect(json.backup.tables).toEqual([
      'public.credit_allocation',
      'public.oidc_models',
      'public.subscriptions',
      'public.usage_events',
      'public.users',
    ]);

    const left = await sql<{ id: string }>`select id from oidc_models where kind = 'Session' order by id`.execute(ws.t.db);
    expect(left.rows.map((r) => r.id)).toEqual([
      'sess-anon-1',
      'sess-anon-2',
      'sess-valid-admin',
      'sess-valid-free',
      'sess-valid-legacy',
      'sess-valid-pro',
    ]);
    expect({ ...(await allCounts(ws)), oidc_models: 0 }).toEqual({ ...before, oidc_models: 0 });
    expect(auditKinds(ws)).toEqual(['run.intent', 'run.outcome', 'run.post']);
  });

  it('counts exactly only the declared, cascaded, critical and exactTables tables; the post-snapshot reuses the in-transaction counts', async () => {
    ws.writeConfig({ criticalTables: { users: { maxDropPercent: 10 } }, exactTables: ['models'] });
    const result = await ws.cli(['cleanup-invalid-sessions', '--json']);
    expect(result.exitCode).toBe(0);
    const json = parseJson<RunResult>(result);
    const entries = readFileSync(path.join(ws.evidenceDir, 'audit.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { kind: string; body: { snapshot?: { tables: Record<string, { rows: number; rowsKind: string }> } } });
    const kinds = (kind: string): Record<string, string> =>
      Object.fromEntries(Object.entries(entries.find((e) => e.kind === kind)!.body.snapshot!.tables).map(([k, t]) => [k, t.rowsKind]));
    const expected = {
      'public.oidc_models': 'exact',
      'public.users': 'exact',
      'public.models': 'exact',
      'public.credit_allocation': 'estimate',
      'public.subscriptions': 'estimate',
      'public.usage_events': 'estimate',
      'public.oauth_clients': 'estimate',
    };
    expect(kinds('run.intent')).toEqual(expect.objectContaining(expected));
    expect(kinds('run.post')).toEqual(expect.objectContaining(expected));
    const post = entries.find((e) => e.kind === 'run.post')!.body.snapshot!.tables;
    expect(post['public.oidc_models']!.rows).toBe(json.counts.inTransaction['public.oidc_models']);
    expect(json.counts.estimated).toEqual([]);
  });

  it("counts a declared table's whole cascade closure exactly, and labels an undeclared table's counts as estimates", async () => {
    ws.writeScript(
      'wide.ts',
      rogue("await sql`update oauth_clients set name = name where client_id = 'cli'`.execute(db);", "touches: { users: ['delete'] },"),
    );
    const result = await ws.cli(['wide', '--json']);
    expect(result.exitCode).toBe(3);
    const json = parseJson<RunResult>(result);
    const intent = JSON.parse(readFileSync(path.join(ws.evidenceDir, 'audit.jsonl'), 'utf8').split('\n')[0]!) as { body: RunIntentBody };
    const tables = intent.body.snapshot.tables;
    for (const key of ['public.users', 'public.credit_allocation', 'public.subscriptions', 'public.usage_events'])
      expect({ key, kind: tables[key]!.rowsKind }).toEqual({ key, kind: 'exact' });
    expect(tables['public.oauth_clients']!.rowsKind).toBe('estimate');
    expect(json.counts.estimated).toEqual(['public.oauth_clients']);
    const show = await ws.cli(['show', json.runId]);
    expect(show.stdout).toMatch(/public\.oauth_clients .* \(estimate\)/);
  });

  it('rolls back a script that deletes users it did not declare, naming every cascaded table', async () => {
    ws.writeScript('rogue.ts', rogue("await sql`delete from users where email like '%example.com'`.execute(db);"));
    const before = await allCounts(ws);
    const result = await ws.cli(['rogue', '--json']);
    expect(result.exitCode).toBe(3);
    const json = parseJson<RunResult>(result);
    expect(json.status).toBe('guard-violation');
    const undeclared = json.violations
      .filter((v) => v.rule === 'undeclared-table')
      .map((v) => v.table)
      .sort();
    expect(undeclared).toEqual(['public.credit_allocation', 'public.subscriptions', 'public.usage_events', 'public.users']);
    expect(json.changes['public.users']?.deleted).toBe(3);
    expect(json.changes['public.credit_allocation']?.deleted).toBe(6);
    expect(json.changes['public.usage_events']?.updated).toBe(3);
    expect(await allCounts(ws)).toEqual(before);
    expect(auditKinds(ws)).toEqual(['run.intent', 'run.outcome']);
  });

  it.each([
    ['an undeclared TRUNCATE', 'await sql`truncate oidc_models`.execute(db);', 'undeclared-truncate'],
    ['undeclared DDL', 'await sql`alter table oidc_models add column note text`.execute(db);', 'undeclared-ddl'],
    ['a limit exceeded', "await sql`delete from oidc_models where kind = 'AccessToken'`.execute(db);", 'limit-exceeded'],
  ])('rolls back %s', async (_label, body, rule) => {
    ws.writeScript('rogue.ts', rogue(body, "touches: { oidc_models: ['delete'] }, limits: { oidc_models: { delete: 5 } },"));
    const before = await allCounts(ws);
    const result = await ws.cli(['rogue', '--json']);
    expect(result.exitCode).toBe(3);
    expect(parseJson<RunResult>(result).violations.map((v) => v.rule)).toContain(rule);
    expect(await allCounts(ws)).toEqual(before);
    const columns = await sql<{
      n: number;
    }>`select count(*)::int as n from information_schema.columns where table_name = 'oidc_models'`.execute(ws.t.db);
    expect(columns.rows[0]!.n).toBe(8);
  });

  it('rolls back a script that would empty a critical table, even when it declares it', async () => {
    ws.writeScript(
      'rogue.ts',
      rogue(
        'await sql`delete from users`.execute(db);',
        "touches: { users: ['delete'], credit_allocation: ['delete'], subscriptions: ['delete'], usage_events: ['update'] },",
      ),
    );
    const result = await ws.cli(['rogue', '--json']);
    expect(result.exitCode).toBe(3);
    const json = parseJson<RunResult>(result);
    expect(json.violations).toEqual([{ table: 'public.users', rule: 'critical-empty', detail: expect.stringContaining('8 rows to 0') }]);
    expect(await countRows(ws.t.db, 'users')).toBe(8);
  });

  it("judges a critical table by the run's own deletes, even while another session inserts as many", async () => {
    ws.writeScript(
      'rogue.ts',
      rogue(
        "await sql`delete from users where email like '%example.com'`.execute(db); await sql`select pg_sleep(3)`.execute(db);",
        "touches: { users: ['delete'], credit_allocation: ['delete'], subscriptions: ['delete'], usage_events: ['update'] },",
      ),
    );
    const run = ws.cli(['rogue', '--json']);
    await waitFor(() => auditKinds(ws).includes('run.intent'));
    // Three new users committed meanwhile: the count ends where it started, the run still removed three.
    await sql`insert into users (email) values ('n1@x.test'), ('n2@x.test'), ('n3@x.test')`.execute(ws.t.db);
    const result = await run;
    expect(result.exitCode).toBe(3);
    expect(parseJson<RunResult>(result).violations).toEqual([
      expect.objectContaining({ table: 'public.users', rule: 'critical-drop', detail: expect.stringContaining('(8 -> 5)') }),
    ]);
    expect(await countRows(ws.t.db, 'users')).toBe(11);
  });

  it('--dry-run shows the changes and leaves the database unchanged', async () => {
    const before = await allCounts(ws);
    const result = await ws.cli(['cleanup-invalid-sessions', '--dry-run', '--json']);
    expect(result.exitCode).toBe(0);
    const json = parseJson<RunResult>(result);
    expect(json.status).toBe('dry-run');
    expect(json.changes['public.oidc_models']?.deleted).toBe(EXPECTED_CLEANUP.deleted);
    expect(json.counts.inTransaction['public.oidc_models']).toBe(before.oidc_models! - EXPECTED_CLEANUP.deleted);
    expect(await allCounts(ws)).toEqual(before);
    // It commits nothing, so there is nothing a backup could be restored to before it.
    expect(json.backup).toMatchObject({ status: 'skipped', path: null });
  });

  it('reports a script error with exit 1 and changes nothing', async () => {
    ws.writeScript('rogue.ts', rogue("await sql`delete from oidc_models where kind = 'Grant'`.execute(db); throw new Error('boom');"));
    const before = await allCounts(ws);
    const result = await ws.cli(['rogue']);
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toContain('boom');
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(await allCounts(ws)).toEqual(before);
    const outcome = JSON.parse(readFileSync(path.join(ws.evidenceDir, 'audit.jsonl'), 'utf8').trim().split('\n')[1]!) as {
      body: { status: string };
    };
    expect(outcome.body.status).toBe('failed');
  });

  it('points at the failing position of a SQL script', async () => {
    ws.writeScript('bad.sql', '-- @description broken\n-- @touches oidc_models: delete\ndelete from oidc_models where nope = 1;\n');
    const result = await ws.cli(['bad', '--json']);
    expect(result.exitCode).toBe(1);
    const json = parseJson<RunResult>(result);
    expect(json.error?.code).toBe('42703');
    expect(json.error?.message).toContain('^');
  });

  it('refuses an unknown script with exit 2, listing the known ones', async () => {
    const result = await ws.cli(['no-such-script']);
    expect(result.exitCode).toBe(2);
    // Without `run`, the word could also have been a mistyped command.
    expect(result.stderr).toContain('Unknown command or script "no-such-script"');
    expect(result.stderr).toContain('cleanup-invalid-sessions');
  });

  it('restores the backup to exactly the pre-snapshot counts', async () => {
    // touched: a plain pg_restore of the archive needs no table outside it (usage_events -> models).
    const json = parseJson<RunResult>(await ws.cli(['cleanup-invalid-sessions', '--json', '--backup', 'touched']));
    const { execa } = await import('execa');
    const scratch = `${ws.t.name}_restore`;
    await sql`create database ${sql.id(scratch)}`.execute(ws.t.db);
    const url = new URL(ws.t.url);
    await execa('/usr/lib/postgresql/15/bin/pg_restore', ['--no-owner', '-d', scratch, path.join(ws.evidenceDir, json.backup.path!)], {
      env: { PGHOST: url.hostname, PGPORT: url.port, PGUSER: 'postgres' },
    });
    const { createDb } = await import('../src/db/connection.js');
    const restored = createDb(ws.t.url.replace(/\/[^/]+$/, `/${scratch}`));
    try {
      expect(await countRows(restored, 'oidc_models')).toBe(json.counts.pre['public.oidc_models']);
    } finally {
      await restored.destroy();
      await sql`drop database ${sql.id(scratch)} with (force)`.execute(ws.t.db);
    }
  });

  it('exits 6 when another guarded run holds the lock, naming it', async () => {
    ws.writeScript(
      'slow.ts',
      rogue('await sql`select pg_sleep(4)`.execute(db);', "name: 'slow', touches: {},").replace("name: 'rogue',\n", ''),
    );
    const first = ws.cli(['slow']);
    await new Promise((r) => setTimeout(r, 2500));
    const second = await ws.cli(['cleanup-invalid-sessions']);
    expect(second.exitCode).toBe(6);
    expect(second.stderr).toContain('script slow');
    expect((await first).exitCode).toBe(0);
  });

  it('stops with exit 4 before running the script when only a too-old pg_dump is configured', async () => {
    const bin = path.join(ws.cwd, 'old-bin');
    mkdirSync(bin);
    for (const tool of ['pg_dump', 'pg_restore']) {
      writeFileSync(path.join(bin, tool), `#!/bin/sh\necho "${tool} (PostgreSQL) 9.6.24"\n`, { mode: 0o755 });
    }
    ws.writeConfig({ pgBinDir: bin });
    const before = await allCounts(ws);
    const result = await ws.cli(['cleanup-invalid-sessions', '--json']);
    expect(result.exitCode).toBe(4);
    const json = parseJson<RunResult>(result);
    expect(json.status).toBe('backup-failed');
    expect(json.backup.error).toContain('9.6.24');
    expect(json.scriptOutput).toBeUndefined();
    expect(await allCounts(ws)).toEqual(before);
    expect(auditKinds(ws)).toEqual(['run.intent', 'run.outcome']);
  });

  it('stops with exit 4 when the evidence directory cannot be written', async () => {
    const file = path.join(ws.cwd, 'not-a-dir');
    writeFileSync(file, '');
    const before = await allCounts(ws);
    const result = await runCli(['cleanup-invalid-sessions'], {
      cwd: ws.cwd,
      env: { ...ws.env, SAFE_RUN_EVIDENCE_DIR: path.join(file, 'evidence') },
    });
    expect(result.exitCode).toBe(4);
    expect(result.stderr).toContain('not writable (ENOTDIR)');
    expect(result.stderr.trim().split('\n')).toEqual([
      expect.stringContaining('not writable (ENOTDIR)'),
      '  safe: nothing was committed: the database is as it was before this command.',
      expect.stringMatching(/^ {2}next: /),
    ]);
    expect(await allCounts(ws)).toEqual(before);
  });

  it('names the unwritable evidence directory first when the database cannot be reached either', async () => {
    // The connections open while the evidence probe runs; the probe's failure is still the one reported.
    const file = path.join(ws.cwd, 'not-a-dir-either');
    writeFileSync(file, '');
    const result = await runCli(['cleanup-invalid-sessions'], {
      cwd: ws.cwd,
      env: { ...ws.env, SAFE_RUN_EVIDENCE_DIR: path.join(file, 'evidence'), DATABASE_URL: 'postgres://x@127.0.0.1:1/x' },
    });
    expect(result.exitCode).toBe(4);
    expect(result.stderr).toContain('not writable (ENOTDIR)');
    expect(result.stderr).not.toContain('Cannot connect');
  });

  it('rolls back and records an interrupted outcome on SIGINT', async () => {
    ws.writeScript(
      'rogue.ts',
      rogue("await sql`delete from oidc_models where kind = 'Grant'`.execute(db); await sql`select pg_sleep(30)`.execute(db);"),
    );
    const before = await allCounts(ws);
    const child = execa(process.execPath, [CLI_PATH, 'rogue', '--json'], { cwd: ws.cwd, env: ws.env, reject: false });
    await waitFor(() => auditKinds(ws).includes('run.intent'));
    await new Promise((r) => setTimeout(r, 500));
    child.kill('SIGINT');
    const result = await child;
    expect(result.exitCode).toBe(130);
    expect(parseJson<RunResult>({ exitCode: 130, stdout: String(result.stdout), stderr: String(result.stderr) }).status).toBe(
      'interrupted',
    );
    expect(auditKinds(ws)).toEqual(['run.intent', 'run.outcome']);
    expect(await allCounts(ws)).toEqual(before);
  });

  it('survives its connection dying mid-script: exit 1, a failed outcome, nothing changed', async () => {
    ws.writeScript(
      'rogue.ts',
      rogue("await sql`delete from oidc_models where kind = 'Grant'`.execute(db); await sql`select pg_sleep(30)`.execute(db);"),
    );
    const before = await allCounts(ws);
    const running = ws.cli(['rogue']);
    // A script may not terminate backends itself (the policy refuses it): the server, or an operator, does.
    await waitFor(
      async () =>
        (
          await sql<{ n: number }>`select pg_catalog.count(*)::int as n from pg_catalog.pg_terminate_backend((
      select pid from pg_catalog.pg_stat_activity where query like '%pg_sleep(30)%' and pid <> pg_catalog.pg_backend_pid() limit 1)) t(ok) where ok`.execute(
            ws.t.db,
          )
        ).rows[0]!.n === 1,
    );
    const result = await running;
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toContain('FAILED (rolled back)');
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(auditKinds(ws)).toEqual(['run.intent', 'run.outcome']);
    expect(await allCounts(ws)).toEqual(before);
  });

  it('enforces an environment that requires a reason and a confirmation', async () => {
    ws.writeConfig({ environments: { production: { hostPattern: '^127\\.', requireReason: true, confirm: true } } });
    const noReason = await ws.cli(['cleanup-invalid-sessions']);
    expect(noReason.exitCode).toBe(2);
    expect(noReason.stderr).toContain('The production environment requires a reason.');
    const noConfirm = await ws.cli(['cleanup-invalid-sessions', '--reason', 'INC-1']);
    expect(noConfirm.exitCode).toBe(2);
    expect(noConfirm.stderr).toContain('--yes');
    expect((await ws.cli(['cleanup-invalid-sessions', '--reason', 'INC-1', '--yes'])).exitCode).toBe(0);
    const intent = JSON.parse(readFileSync(path.join(ws.evidenceDir, 'audit.jsonl'), 'utf8').split('\n')[0]!) as {
      body: { reason: string };
    };
    expect(intent.body.reason).toBe('INC-1');
  });

  it('does not pin on a run what another session does to a critical table meanwhile', async () => {
    ws.writeScript(
      'rogue.ts',
      rogue("await sql`delete from oidc_models where kind = 'Grant'`.execute(db); await sql`select pg_sleep(3)`.execute(db);"),
    );
    const run = ws.cli(['rogue', '--json']);
    await waitFor(() => auditKinds(ws).includes('run.intent'));
    await sql`delete from users`.execute(ws.t.db);
    const result = await run;
    expect(result.exitCode).toBe(0);
    const json = parseJson<RunResult>(result);
    expect(json.violations).toEqual([]);
    expect(Object.keys(json.changes)).toEqual(['public.oidc_models']);
    const blame = parseJson<{ changes: { attribution: { type: string } }[] }>(await ws.cli(['blame', 'users', '--json']));
    // Not the run's, and not "outside any guarded run" either: another session, while the run ran.
    expect(blame.changes.map((c) => c.attribution.type)).toEqual(['concurrent']);
  });

  it("does not record another session's TRUNCATE or DDL during the run as the run's", async () => {
    ws.writeScript(
      'rogue.ts',
      rogue("await sql`delete from oidc_models where kind = 'Grant'`.execute(db); await sql`select pg_sleep(3)`.execute(db);"),
    );
    const run = ws.cli(['rogue', '--json']);
    await waitFor(() => auditKinds(ws).includes('run.intent'));
    await sql`truncate models cascade`.execute(ws.t.db);
    await sql`alter table oauth_clients add column note text`.execute(ws.t.db);
    const result = await run;
    expect(result.exitCode).toBe(0);
    const json = parseJson<RunResult>(result);
    expect(json.violations).toEqual([]);
    expect(Object.keys(json.changes)).toEqual(['public.oidc_models']);
  });

  it('does not blame on a run with DDL of its own the role another session creates in the cluster meanwhile', async () => {
    ws.writeScript(
      'rogue.ts',
      rogue(
        'await sql`alter table usage_events add column note text`.execute(db); await sql`select pg_sleep(3)`.execute(db);',
        "touches: { usage_events: ['ddl'] },",
      ),
    );
    const run = ws.cli(['rogue', '--json']);
    await waitFor(() => auditKinds(ws).includes('run.intent'));
    const role = `made_elsewhere_${process.pid}`;
    await sql`create role ${sql.id(role)}`.execute(ws.t.db);
    try {
      const result = await run;
      // The error too, so that a failure says what stopped the run.
      expect({ exit: result.exitCode, error: result.exitCode === 0 ? null : result.stdout || result.stderr }).toEqual({
        exit: 0,
        error: null,
      });
      expect(parseJson<RunResult>(result).violations).toEqual([]);
      const { rows } = await sql<{
        n: number;
      }>`select count(*)::int as n from information_schema.columns where table_name = 'usage_events' and column_name = 'note'`.execute(
        ws.t.db,
      );
      expect(rows[0]!.n).toBe(1);
    } finally {
      await sql`drop role ${sql.id(role)}`.execute(ws.t.db);
    }
  });

  it('warns on a dry run that drew from a sequence, and not about sequences other sessions used', async () => {
    ws.writeScript(
      'rogue.ts',
      rogue('await sql`insert into usage_events (tokens) values (1)`.execute(db);', "touches: { usage_events: ['insert'] },"),
    );
    const dry = await ws.cli(['rogue', '--dry-run']);
    expect(dry.exitCode).toBe(0);
    expect(dry.stdout).toContain('sequences advanced and stay advanced after a rollback: public.usage_events_id_seq');

    ws.writeScript(
      'rogue.ts',
      rogue("await sql`delete from oidc_models where kind = 'Grant'`.execute(db); await sql`select pg_sleep(3)`.execute(db);"),
    );
    const run = ws.cli(['rogue', '--dry-run', '--json']);
    await waitFor(() => auditKinds(ws).filter((k) => k === 'run.intent').length === 2);
    await sql`insert into usage_events (tokens) values (2)`.execute(ws.t.db);
    expect(parseJson<RunResult>(await run).sequencesUsed).toEqual([]);
  });

  it('refuses a SQL script with its own BEGIN/COMMIT, but not a DO block', async () => {
    ws.writeScript(
      'tx.sql',
      "-- @description has its own transaction\n-- @touches oidc_models: delete\nbegin;\ndelete from oidc_models where kind = 'Grant';\ncommit;\n",
    );
    const refused = await ws.cli(['tx']);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain('BEGIN is refused');
    expect(refused.stderr).toContain('line 5: commit');
    ws.writeScript(
      'tx.sql',
      "-- @description a DO block\n-- @touches oidc_models: delete\ndo $$ begin delete from oidc_models where kind = 'Grant'; end $$;\n",
    );
    expect((await ws.cli(['tx'])).exitCode).toBe(0);
  });

  it('reports a TypeScript script that commits the guarded transaction itself', async () => {
    ws.writeScript('rogue.ts', rogue('await sql`commit`.execute(db);'));
    const result = await ws.cli(['rogue', '--json']);
    // The policy refuses it before it reaches the server; the escape path is tested in trust-attacks.
    expect(result.exitCode).toBe(3);
    expect(parseJson<RunResult>(result).violations.map((v) => v.rule)).toEqual(['refused-statement']);
  });

  it('runs as an ordinary role; the chain head needs only a schema an owner grants', async () => {
    const role = `app_${ws.t.name}`;
    await sql.raw('create table payroll (id int); insert into payroll values (1), (2)').execute(ws.t.db);
    await sql
      .raw(
        `create role ${role} login; grant usage on schema public to ${role};
      grant select, insert, update, delete on all tables in schema public to ${role};
      grant usage, select on all sequences in schema public to ${role}`,
      )
      .execute(ws.t.db);
    const url = new URL(ws.t.url);
    url.username = role;
    const asApp = (args: string[]) => runCli(args, { cwd: ws.cwd, env: { ...ws.env, DATABASE_URL: url.href } });
    await sql.raw(`revoke all on payroll from ${role}`).execute(ws.t.db);
    const first = await asApp(['cleanup-invalid-sessions']);
    expect(first.exitCode).toBe(0);
    const intent = JSON.parse(readFileSync(path.join(ws.evidenceDir, 'audit.jsonl'), 'utf8').split('\n')[0]!) as { body: RunIntentBody };
    expect(intent.body.snapshot.tables['public.payroll']?.rowsKind).toBe('estimate');
    expect(first.stderr.split('Could not record the audit chain head').length - 1).toBe(1);

    await sql.raw(`create schema safe_run; grant usage, create on schema safe_run to ${role}`).execute(ws.t.db);
    expect((await asApp(['cleanup-invalid-sessions'])).exitCode).toBe(0);
    const verify = parseJson<{ ok: boolean; anchor: { seq: number } | null }>(await asApp(['verify', '--json']));
    expect(verify).toMatchObject({ ok: true, anchor: { seq: 6 } });
    await sql.raw(`drop owned by ${role} cascade; drop role ${role}`).execute(ws.t.db);
  });

  it('keeps the database password out of the audit log, stderr and the summary', async () => {
    const url = new URL(ws.t.url);
    url.password = 'sup3r-s3cret';
    const result = await runCli(['cleanup-invalid-sessions', '--json', '--verbose'], {
      cwd: ws.cwd,
      env: { ...ws.env, DATABASE_URL: url.href },
    });
    expect(result.exitCode).toBe(0);
    const log = readFileSync(path.join(ws.evidenceDir, 'audit.jsonl'), 'utf8');
    for (const text of [log, result.stdout, result.stderr]) expect(text).not.toContain('sup3r-s3cret');
    expect(log).toContain(`postgres://postgres@127.0.0.1:${url.port}/`);
  });
});

async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await predicate()) return;
    } catch {
      // The file may not exist yet.
    }
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 100));
  }
}
