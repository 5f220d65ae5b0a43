import { execa } from 'execa';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import { migrateToLatest } from '../demo/migrate.js';
import { createDb } from '../src/db/connection.js';
import { withDatabase } from '../src/db/url.js';
import type { BlameResult } from '../src/blame/blame.js';
import type { CheckResult } from '../src/history/check.js';
import type { History } from '../src/history/run-log.js';
import type { RunRecord } from '../src/history/run-record.js';
import type { RunResult } from '../src/run/types.js';
import { CLI_PATH, parseJson } from './helpers/cli.js';
import { repoRoot } from './helpers/constants.js';
import { recreateTestDatabase, serverUrl } from './helpers/db.js';
import { createWorkspace, type Workspace } from './helpers/workspace.js';

/**
 * incident-users-table-empty.md, replayed end to end with the built CLI: the session
 * cleanup runs guarded, then `users` is emptied behind its back. The evidence has to clear
 * the script and point at the window where the rows went, without anyone's memory.
 */
const CONFIG = { criticalTables: { users: { maxDropPercent: 10 } }, backup: { scope: 'full' } };

async function plainSession(url: string, statement: string): Promise<void> {
  const db = createDb(url, { maxConnections: 1 });
  try {
    await sql.raw(statement).execute(db);
  } finally {
    await db.destroy();
  }
}

/** Other backends' counters reach pg_stat_user_tables up to a second late. */
async function waitFor(url: string, query: string, ok: (n: number) => boolean): Promise<void> {
  const db = createDb(url, { maxConnections: 1 });
  try {
    for (let i = 0; i < 150; i++) {
      const { rows } = await sql<{ n: number }>`${sql.raw(query)}`.execute(db);
      if (ok(Number(rows[0]?.n ?? 0))) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`timed out waiting for: ${query}`);
  } finally {
    await db.destroy();
  }
}

async function cleanupRun(ws: Workspace): Promise<RunResult> {
  const run = await ws.cli(['cleanup-invalid-sessions', '--json', '--reason', 'INC-users-empty']);
  expect(run.exitCode).toBe(0);
  const result = parseJson<RunResult>(run);
  expect(result.status).toBe('committed');
  return result;
}

function entryKinds(ws: Workspace): { seq: number; kind: string; runId?: string }[] {
  const file = path.join(ws.evidenceDir, 'audit.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { seq: number; kind: string; runId?: string });
}

describe('the incident, replayed', () => {
  let ws: Workspace;
  beforeEach(async () => {
    ws = await createWorkspace(CONFIG);
  });
  afterEach(async () => {
    await ws.cleanup();
  });

  it('clears the cleanup script and puts the emptied users table outside any guarded run', async () => {
    const run = await cleanupRun(ws);
    const post = entryKinds(ws).find((e) => e.kind === 'run.post')!;
    await plainSession(ws.t.url, 'delete from users');
    await waitFor(ws.t.url, "select n_tup_del as n from pg_stat_user_tables where relname = 'users'", (n) => n >= 8);

    // check: the drop, as a delete, and the critical table empty.
    const check = await ws.cli(['check', '--json']);
    expect(check.exitCode).toBe(10);
    const drift = parseJson<CheckResult>(check);
    expect(drift.against).toMatchObject({ seq: post.seq, kind: 'run.post', runId: run.runId });
    expect(drift.findings).toContainEqual(
      expect.objectContaining({
        kind: 'count-changed',
        table: 'public.users',
        before: 8,
        after: 0,
        deltas: { inserted: 0, updated: 0, deleted: 8 },
      }),
    );
    expect(drift.findings).toContainEqual(expect.objectContaining({ kind: 'critical-empty', table: 'public.users' }));

    // blame: outside any guarded run, between the cleanup's post-snapshot and now.
    const blame = parseJson<BlameResult>(await ws.cli(['blame', 'users', '--json']));
    expect(blame.table).toBe('public.users');
    expect(blame.changes).toHaveLength(1);
    expect(blame.changes[0]).toMatchObject({ from: `#${post.seq} run.post`, to: 'now', before: 8, after: 0, counters: { deleted: 8 } });
    expect(blame.changes[0]!.attribution).toEqual({
      type: 'outside',
      after: expect.stringMatching(new RegExp(`^#${post.seq} run\\.post of cleanup-invalid-sessions ${run.runId} at `)),
      before: expect.stringMatching(/^now \(live database/),
    });
    const blameText = await ws.cli(['blame', 'users']);
    expect(blameText.stdout).toMatch(/8 -> 0\s+OUTSIDE any guarded run/);
    // The table the cleanup did touch is attributed to it, with its exact count.
    const sessions = parseJson<BlameResult>(await ws.cli(['blame', 'oidc_models', '--json']));
    expect(sessions.changes).toEqual([
      expect.objectContaining({
        change: expect.objectContaining({ deleted: 5 }),
        attribution: { type: 'run', runId: run.runId, script: 'cleanup-invalid-sessions' },
      }),
    ]);

    // show (by a prefix of the id): 0 changes to users, 8 rows before and after the run.
    const show = parseJson<RunRecord>(await ws.cli(['show', run.runId.slice(0, 12), '--json']));
    expect(show.runId).toBe(run.runId);
    expect(show.status).toMatchObject({ status: 'committed', committed: true });
    expect(show.changes['public.users']).toBeUndefined();
    expect(Object.keys(show.changes)).toEqual(['public.oidc_models']);
    expect(show.counts.pre['public.users']).toBe(8);
    expect(show.counts.post?.['public.users']).toBe(8);
    expect(show.backupCheck).toMatchObject({ exists: true, sha256Matches: true });
    expect(show.entries.map((e) => e.kind)).toEqual(['run.intent', 'run.outcome', 'run.post']);
    const showText = await ws.cli(['show', run.runId]);
    expect(showText.stdout).toMatch(/public\.users\s+0\s+0\s+0\s+8 -> 8/);
    expect(showText.stdout).toMatch(/public\.oidc_models\s+0\s+0\s+5/);

    // report: the verdict, the verification, the restore command.
    const report = await ws.cli(['report', 'users']);
    expect(report.exitCode).toBe(0);
    expect(report.stdout).toContain(
      `cleanup-invalid-sessions deleted 0 rows from users; users went from 8 to 0 outside any guarded run between #${post.seq} run.post of cleanup-invalid-sessions ${run.runId}`,
    );
    expect(report.stdout).toMatch(/delete counter moved by 8/);
    expect(report.stdout).toMatch(/Hash chain and head signature verified/);
    expect(report.stdout).toContain(`safe-run restore ${run.runId} --table public.users`);
    const html = path.join(ws.cwd, 'users.html');
    const written = await ws.cli(['report', 'users', '--format', 'html', '-o', html]);
    expect(written.exitCode).toBe(0);
    expect(readFileSync(html, 'utf8')).toMatch(
      /^<!doctype html>[\s\S]*<h2>Verdict<\/h2>[\s\S]*cleanup-invalid-sessions deleted 0 rows from users/,
    );

    // log: the run, its changes, and the filters.
    const log = parseJson<History>(await ws.cli(['log', '--json']));
    expect(log.runs).toEqual([
      expect.objectContaining({
        runId: run.runId,
        script: 'cleanup-invalid-sessions',
        status: 'committed',
        reason: 'INC-users-empty',
        changes: { 'public.oidc_models': expect.objectContaining({ deleted: 5 }) },
      }),
    ]);
    expect(parseJson<History>(await ws.cli(['log', '--table', 'users', '--json'])).runs).toEqual([]);
    expect(parseJson<History>(await ws.cli(['log', '--table', 'oidc_models', '--since', '1h', '--json'])).runs).toHaveLength(1);
    expect(parseJson<History>(await ws.cli(['log', '--since', '2999-01-01', '--json'])).runs).toEqual([]);
    expect((await ws.cli(['log'])).stdout).toMatch(new RegExp(`${run.runId}\\s+cleanup-invalid-sessions\\s+committed\\s+.*oidc_models -5`));
  });

  it('names a database reset with an incomplete seed: db-recreated, and the rows lost with the old database', async () => {
    const run = await cleanupRun(ws);
    // `npm run db:reset` whose seed died before the users: a new database, tables, some data.
    await recreateTestDatabase(ws.t.name, 'empty');
    const fresh = createDb(withDatabase(serverUrl(), ws.t.name), { maxConnections: 1 });
    try {
      await migrateToLatest(fresh);
      await sql`insert into oauth_clients (client_id, name) values ('web-app', 'Web app'), ('cli', 'CLI')`.execute(fresh);
      await sql`insert into models (id, name, provider) values ('gpt-4o', 'gpt-4o', 'gpt')`.execute(fresh);
    } finally {
      await fresh.destroy();
    }

    const check = await ws.cli(['check', '--json']);
    expect(check.exitCode).toBe(10);
    const findings = parseJson<CheckResult>(check).findings;
    expect(findings[0]).toMatchObject({ kind: 'db-recreated' });
    expect(findings).toContainEqual(
      expect.objectContaining({ kind: 'count-changed', table: 'public.users', before: 8, after: 0, deltas: null }),
    );
    expect(findings).toContainEqual(expect.objectContaining({ kind: 'critical-empty', table: 'public.users' }));

    const blame = parseJson<BlameResult>(await ws.cli(['blame', 'users', '--json']));
    expect(blame.changes).toEqual([
      expect.objectContaining({
        before: 8,
        after: 0,
        counters: null,
        events: ['db-recreated'],
        attribution: expect.objectContaining({ type: 'outside' }),
      }),
    ]);
    expect(blame.observations[blame.observations.length - 1]).toMatchObject({ kind: 'live', rows: 0, events: ['db-recreated'] });

    const report = await ws.cli(['report', 'users']);
    expect(report.stdout).toContain('cleanup-invalid-sessions deleted 0 rows from users; users went from 8 to 0 outside any guarded run');
    expect(report.stdout).toMatch(/In that window the database was recreated/);
    expect(report.stdout).toContain(`safe-run restore ${run.runId} --table public.users`);
  });

  it('names a db:reset wrapped in `safe-run exec` as the window where the users went', async () => {
    const run = await cleanupRun(ws);
    // The reset, as a child process of exec: it empties users through its own connection.
    const reset = `const pg = require(${JSON.stringify(path.join(repoRoot(), 'node_modules', 'pg'))});
const c = new pg.Client(process.env.DATABASE_URL);
c.connect().then(() => c.query('delete from users')).then(() => c.end());`;
    const exec = await ws.cli(['exec', '--label', 'db:reset', '--json', '--', process.execPath, '-e', reset]);
    expect(exec.exitCode).toBe(10);
    const execRun = parseJson<{ runId: string; status: string }>(exec);
    expect(execRun.status).toBe('completed');

    const blame = parseJson<BlameResult>(await ws.cli(['blame', 'users', '--json']));
    expect(blame.changes).toEqual([
      expect.objectContaining({
        before: 8,
        after: 0,
        attribution: {
          type: 'outside',
          after: expect.stringMatching(/exec\.intent of exec "db:reset"/),
          before: expect.stringMatching(/exec\.outcome of exec "db:reset"/),
        },
      }),
    ]);
    const log = parseJson<History>(await ws.cli(['log', '--json']));
    expect(log.runs.map((r) => [r.kind, r.script, r.status])).toEqual([
      ['run', 'cleanup-invalid-sessions', 'committed'],
      ['exec', 'exec "db:reset"', 'completed'],
    ]);
    expect(log.runs[1]!.counts).toMatchObject({ 'public.users': { before: 8, after: 0 } });
    expect(parseJson<History>(await ws.cli(['log', '--table', 'users', '--json'])).runs.map((r) => r.runId)).toEqual([execRun.runId]);

    const report = await ws.cli(['report', 'users']);
    expect(report.stdout).toContain(
      `cleanup-invalid-sessions deleted 0 rows from users; users went from 8 to 0 outside any guarded run between #`,
    );
    // The newest backup from before the loss is the one exec took.
    expect(report.stdout).toContain(`safe-run restore ${execRun.runId} --table public.users`);
    expect(run.runId).not.toBe(execRun.runId);
  });

  it('shows a run killed with SIGKILL as interrupted', async () => {
    ws.writeScript(
      'sleeper.ts',
      `import { defineScript, sql } from 'safe-run';
export default defineScript({
  name: 'sleeper',
  description: 'holds its transaction open',
  touches: { oidc_models: ['delete'] },
  async run({ db }) { await sql\`select pg_sleep(2)\`.execute(db); },
});
`,
    );
    const child = execa(process.execPath, [CLI_PATH, 'sleeper'], { cwd: ws.cwd, env: { ...ws.env }, reject: false });
    let intent: { runId?: string } | undefined;
    for (let i = 0; i < 300 && !intent; i++) {
      await new Promise((r) => setTimeout(r, 50));
      intent = entryKinds(ws).find((e) => e.kind === 'run.intent');
    }
    expect(intent?.runId).toBeDefined();
    child.kill('SIGKILL');
    await child;
    const runId = intent!.runId!;
    expect(entryKinds(ws).map((e) => e.kind)).toEqual(['run.intent']);

    const check = await ws.cli(['check', '--json']);
    expect(check.exitCode).toBe(10);
    expect(parseJson<CheckResult>(check).findings).toEqual([
      expect.objectContaining({ kind: 'interrupted-run', runId, script: 'sleeper' }),
    ]);

    // Once the server has noticed the client is gone, the run is plainly interrupted.
    await waitFor(
      ws.t.url,
      "select count(*)::int as n from pg_stat_activity where application_name like 'safe-run:sleeper:%'",
      (n) => n === 0,
    );
    const log = parseJson<History>(await ws.cli(['log', '--json']));
    expect(log.runs).toEqual([expect.objectContaining({ runId, status: 'interrupted' })]);
    const show = parseJson<RunRecord>(await ws.cli(['show', runId, '--json']));
    expect(show.status.status).toBe('interrupted');
    expect(show.outcome).toBeNull();
    expect((await ws.cli(['check'])).stdout).toMatch(
      /interrupted-run-[0-9a-f]{8}\s+first seen #1 run\.intent[^\n]*\n\s+Run \S+ \(sleeper, intent #1 .*\) has an intent but no outcome: the process was killed/,
    );
  });
});
