import { execa } from 'execa';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { sql } from 'kysely';
import { waitFor } from './helpers/attacks.js';
import { CLI_PATH, parseJson, runCli } from './helpers/cli.js';
import { countRows } from './helpers/db.js';
import { logLines } from './helpers/evidence.js';
import { createWorkspace, type Workspace } from './helpers/workspace.js';

/** What an operator reads: log lines on stderr, one document on stdout, `show last`, the summary, Ctrl-C. */
describe('CLI output against a real database', () => {
  let ws: Workspace;
  beforeAll(async () => {
    ws = await createWorkspace();
    ws.writeScript(
      'purge-sessions.sql',
      "-- @description Purge sessions\n-- @touches oidc_models: delete\ndelete from oidc_models where kind = 'Session';\n",
    );
    ws.writeScript(
      'purge-then-fail.sql',
      "-- @description Deletes, then fails\n-- @touches oidc_models: delete\ndelete from oidc_models where kind = 'Session';\nselect 1 / 0;\n",
    );
  });
  afterAll(() => ws.cleanup());

  it('logs human lines on a non-terminal stderr, and keeps stdout to one JSON document with --json', async () => {
    const result = await ws.cli(['purge-sessions', '--dry-run', '--json']);
    expect(result.exitCode).toBe(0);
    expect(parseJson<{ status: string }>(result).status).toBe('dry-run');
    expect(result.stderr).toMatch(/^\d\d:\d\d:\d\d info {2}no backup for a dry run {2}scope=guarded$/m);
    expect(result.stderr).not.toContain('{"level"');
  });

  it('says in the summary that a dry run takes no backup, not that the scope is "none"', async () => {
    const result = await ws.cli(['purge-sessions', '--dry-run']);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain('backup: none (a dry run takes no backup)');
    expect(result.stdout).not.toContain('scope "none"');
  });

  it('gives pino JSON lines with --log-format json or SAFE_RUN_LOG_FORMAT=json', async () => {
    for (const result of [
      await ws.cli(['purge-sessions', '--dry-run', '--log-format', 'json']),
      await execa(process.execPath, [CLI_PATH, 'purge-sessions', '--dry-run'], {
        cwd: ws.cwd,
        env: { ...ws.env, SAFE_RUN_LOG_FORMAT: 'json' },
        reject: false,
      }),
    ]) {
      expect(result.exitCode).toBe(0);
      const lines = String(result.stderr)
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { level: number; msg: string; scope?: string });
      expect(lines).toContainEqual(expect.objectContaining({ level: 30, msg: 'no backup for a dry run', scope: 'guarded' }));
    }
  });

  it('folds many drift findings of one kind into one line of the summary; the signed outcome keeps each', async () => {
    expect((await ws.cli(['snapshot'])).exitCode).toBe(0);
    // A migration between two observations: four tables change shape at once.
    const tables = ['users', 'oidc_models', 'credit_allocation', 'subscriptions'];
    for (const t of tables) await sql.raw(`alter table ${t} add column drift_probe int`).execute(ws.t.db);
    try {
      const result = await ws.cli(['purge-sessions', '--dry-run']);
      const drift = result.stdout.split('\n').filter((l) => l.includes('drift since the last observation'));
      expect(drift).toEqual([
        expect.stringMatching(
          /schema-changed 4 times \(public\.\w+, public\.\w+, public\.\w+ and 1 more\); the first: .*`safe-run check` lists each$/,
        ),
      ]);
      const shown = parseJson<{ outcome: { drift: { kind: string }[] } }>(await ws.cli(['show', 'last', '--json']));
      expect(shown.outcome.drift.filter((d) => d.kind === 'schema-changed')).toHaveLength(4);
    } finally {
      for (const t of tables) await sql.raw(`alter table ${t} drop column drift_probe`).execute(ws.t.db);
      expect((await ws.cli(['snapshot'])).exitCode).toBe(0);
    }
  });

  it('snapshot without its signing key exits 2 with the keygen hint and appends nothing, though it reads the database meanwhile', async () => {
    expect((await ws.cli(['snapshot'])).exitCode).toBe(0);
    const before = logLines(ws.evidenceDir).length;
    const result = await runCli(['snapshot'], { cwd: ws.cwd, env: { ...ws.env, SAFE_RUN_SIGNING_KEY: path.join(ws.cwd, 'no-such.key') } });
    expect({ exitCode: result.exitCode, stderr: result.stderr }).toEqual({
      exitCode: 2,
      stderr: expect.stringMatching(/No signing key at .*no-such\.key[\s\S]*safe-run keygen/),
    });
    expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace without --verbose
    expect(logLines(ws.evidenceDir)).toHaveLength(before);
  });

  it('show last (and latest) is the newest run; --script picks the newest of one script', async () => {
    const committed = parseJson<{ runId: string }>(await ws.cli(['cleanup-invalid-sessions', '--json']));
    const newer = parseJson<{ runId: string }>(await ws.cli(['purge-sessions', '--dry-run', '--json']));
    expect(parseJson<{ runId: string }>(await ws.cli(['show', 'last', '--json'])).runId).toBe(newer.runId);
    expect(parseJson<{ runId: string }>(await ws.cli(['show', 'latest', '--json'])).runId).toBe(newer.runId);
    const ofScript = await ws.cli(['show', 'last', '--script', 'cleanup-invalid-sessions']);
    expect(ofScript.stdout).toContain(`run ${committed.runId}  cleanup-invalid-sessions  COMMITTED`);
    const none = await ws.cli(['show', 'last', '--script', 'no-such-script']);
    expect(none.exitCode).toBe(2);
    expect(none.stderr).toContain('No guarded run of "no-such-script"');
  });

  it('says how many rows a failed SQL script changed before the rollback', async () => {
    const sessions = await countRows(ws.t.db, 'oidc_models');
    await sql`insert into oidc_models (id, kind, payload) select 'extra-' || g, 'Session', '{}'::jsonb from generate_series(1, 3) g`.execute(
      ws.t.db,
    );
    const expected = (await sql<{ n: number }>`select count(*)::int as n from oidc_models where kind = 'Session'`.execute(ws.t.db)).rows[0]!
      .n;
    expect(expected).toBeGreaterThan(0);

    const human = await ws.cli(['purge-then-fail']);
    expect(human.exitCode).toBe(1);
    expect(human.stdout).toContain('FAILED (rolled back)');
    expect(human.stdout).toContain(`rows changed before the rollback: ${expected} `);
    expect(human.stdout).not.toContain('no table changed');
    const json = parseJson<{ status: string; rowsAffected: number }>(await ws.cli(['purge-then-fail', '--json']));
    expect(json).toMatchObject({ status: 'failed', rowsAffected: expected });
    expect(await countRows(ws.t.db, 'oidc_models')).toBe(sessions + 3);
  });

  it('SIGINT while pg_dump waits on a lock stops it at once: exit 130, no partial archive, an interrupted outcome', async () => {
    // A table neither declared nor critical is counted by estimate, so the snapshot does not
    // wait on the lock and pg_dump, with the full scope, is the first to need it.
    await sql`create table slow_dump as select g as id from generate_series(1, 2000) g`.execute(ws.t.db);
    await sql`analyze slow_dump`.execute(ws.t.db);
    ws.writeConfig({ backup: { lockWaitTimeout: '10min' } });
    // Polled from the pool, not from the lock holder: inside its transaction pg_stat_activity stays as first read.
    // This database's only: pg_stat_activity is the cluster's, and other test files run pg_dump beside this one.
    const backupSessions = async (condition: string): Promise<number> =>
      (
        await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
          where datname = current_database() and application_name = 'safe-run backup' and ${sql.raw(condition)}`.execute(ws.t.db)
      ).rows[0]!.n;
    const holder = new pg.Client({ connectionString: ws.t.url });
    await holder.connect();
    try {
      await holder.query('begin');
      await holder.query('lock table slow_dump in access exclusive mode');
      const backups = path.join(ws.evidenceDir, 'backups');
      const earlier = existsSync(backups) ? readdirSync(backups) : [];
      const child = execa(process.execPath, [CLI_PATH, 'purge-sessions', '--backup', 'full', '--json'], {
        cwd: ws.cwd,
        env: ws.env,
        reject: false,
        stdin: 'ignore',
      });
      await waitFor(async () => {
        if (child.exitCode !== null) throw new Error(`the run ended before pg_dump waited: ${String((await child).stderr)}`);
        return (await backupSessions("wait_event_type = 'Lock'")) > 0;
      });
      const partial = readdirSync(backups).filter((f) => !earlier.includes(f));
      expect(partial).toHaveLength(1);
      child.kill('SIGINT');
      const result = await child;
      expect(result.exitCode).toBe(130);
      const run = parseJson<{ runId: string; status: string; backup: { status: string } }>({
        exitCode: result.exitCode ?? -1,
        stdout: String(result.stdout),
        stderr: String(result.stderr),
      });
      expect(run).toMatchObject({ status: 'interrupted', backup: { status: 'failed' } });
      // The lock is still held: had pg_dump not been stopped, the run could not have ended. Its
      // server session goes with the cancel pg_dump sends as it stops, a moment after the exit.
      await waitFor(async () => (await backupSessions('true')) === 0, 10_000);
      expect(partial[0]).toBe(`${run.runId}.dump`);
      expect(readdirSync(backups).sort()).toEqual([...earlier].sort());
      const shown = parseJson<{ runId: string; status: { status: string } }>(await ws.cli(['show', 'last', '--json']));
      expect(shown).toMatchObject({ runId: run.runId, status: { status: 'interrupted' } });
    } finally {
      await holder.query('rollback').catch(() => {});
      await holder.end();
      ws.writeConfig({});
    }
  });
});
