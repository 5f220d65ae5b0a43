import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { createDb } from '../src/db/connection.js';
import type { CheckResult } from '../src/history/check.js';
import type { OpenFinding } from '../src/history/open-findings.js';
import { waitFor } from './helpers/attacks.js';
import { parseJson, runCli } from './helpers/cli.js';
import { createTestDatabase } from './helpers/db.js';
import { createEvidence } from './helpers/evidence.js';
import { createWorkspace, type Workspace } from './helpers/workspace.js';

/**
 * Issue 15, part A, through the built CLI on a real database: the one log of a database is
 * found wherever the operator stands, and a finding stays open until someone answers it.
 */

/** A plain session, like someone's psql; its counters are flushed when it disconnects, so wait for them. */
async function outOfBand(url: string, statement: string, wait?: { table: string; column: 'n_tup_del' | 'n_tup_ins'; atLeast: number }) {
  const plain = createDb(url, { maxConnections: 1 });
  try {
    await sql.raw(statement).execute(plain);
  } finally {
    await plain.destroy();
  }
  if (!wait) return;
  const db = createDb(url, { maxConnections: 1 });
  try {
    await waitFor(async () => {
      const { rows } = await sql<{ n: number }>`
        select coalesce(sum(${sql.raw(wait.column)}), 0)::int as n from pg_stat_user_tables where relname = ${wait.table}`.execute(db);
      return (rows[0]?.n ?? 0) >= wait.atLeast;
    });
  } finally {
    await db.destroy();
  }
}

type Finding = OpenFinding;
const openOf = (r: CheckResult): Finding[] => r.findings.filter((f): f is Finding => 'id' in f);
const text = (r: { stdout: string; stderr: string }): string => `${r.stdout}\n${r.stderr}`;

describe('one log per database, found wherever you stand', () => {
  let ws: Workspace;
  let project: string;
  let env: Record<string, string>;
  beforeEach(async () => {
    ws = await createWorkspace();
    // A project whose config names a relative evidence directory: relative to the config, not the cwd.
    project = mkdtempSync(path.join(os.tmpdir(), 'safe-run-project-'));
    writeFileSync(path.join(project, 'safe-run.config.json'), JSON.stringify({ scriptsDir: ws.scriptsDir, evidenceDir: 'evidence' }));
    mkdirSync(path.join(project, 'app', 'deep'), { recursive: true });
    env = { DATABASE_URL: ws.t.url, SAFE_RUN_SIGNING_KEY: ws.signingKey };
  });
  afterEach(async () => {
    rmSync(project, { recursive: true, force: true });
    await ws.cleanup();
  });

  it('finds the config and its log from a subdirectory, and SAFE_RUN_CONFIG from anywhere', async () => {
    expect((await runCli(['snapshot'], { cwd: path.join(project, 'app'), env })).exitCode).toBe(0);
    expect(existsSync(path.join(project, 'evidence', 'audit.jsonl'))).toBe(true);
    expect(existsSync(path.join(project, 'app', 'evidence'))).toBe(false);

    const deep = await runCli(['log', '--json'], { cwd: path.join(project, 'app', 'deep'), env });
    expect(deep.exitCode).toBe(0);
    const check = await runCli(['check', '--json'], { cwd: path.join(project, 'app', 'deep'), env });
    expect(parseJson<CheckResult>(check)).toMatchObject({ status: 'clean', against: { seq: 1, kind: 'snapshot' } });

    const elsewhere = mkdtempSync(path.join(os.tmpdir(), 'safe-run-elsewhere-'));
    try {
      const viaEnv = { ...env, SAFE_RUN_CONFIG: path.join(project, 'safe-run.config.json') };
      const verify = await runCli(['verify', '--json'], { cwd: elsewhere, env: viaEnv });
      expect(parseJson(verify)).toMatchObject({ ok: true, entries: 1 });
      expect(readdirSync(elsewhere)).toEqual([]);
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });

  it('read commands in an empty directory exit 2, say where they looked, and create nothing', async () => {
    const empty = mkdtempSync(path.join(os.tmpdir(), 'safe-run-empty-'));
    try {
      for (const args of [['log'], ['show', 'last'], ['blame', 'users'], ['check'], ['report', 'users'], ['verify']]) {
        const r = await runCli(args, { cwd: empty, env });
        expect({ args, code: r.exitCode }).toEqual({ args, code: 2 });
        expect(r.stderr).toContain(path.join(empty, 'snapshots', 'audit.jsonl'));
        expect(r.stderr).toContain(`No safe-run.config.* in ${empty} or its parents`);
        expect(r.stderr).toMatch(/no chain head for it in the database/);
        expect(readdirSync(empty)).toEqual([]);
      }
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('exits 5 where the database anchors a log that is not there, naming where it was last written', async () => {
    expect((await runCli(['snapshot'], { cwd: project, env })).exitCode).toBe(0);
    const empty = mkdtempSync(path.join(os.tmpdir(), 'safe-run-empty-'));
    try {
      for (const args of [['log'], ['blame', 'users'], ['check']]) {
        const r = await runCli(args, { cwd: empty, env });
        expect({ args, code: r.exitCode }).toEqual({ args, code: 5 });
        expect(r.stderr).toMatch(/log-behind-anchor/);
        expect(r.stderr).toContain(`last written at ${os.hostname()}:${path.join(project, 'evidence')}`);
        // The log is intact where it was written: the next step points there, not at a backup.
        expect(r.stderr).toContain(`next: The log is intact in ${path.join(project, 'evidence')}: run from the project that keeps it`);
      }
      // A writer does not start a second log for the database either.
      expect((await runCli(['snapshot'], { cwd: empty, env })).exitCode).toBe(5);
      expect(readdirSync(empty)).toEqual([]);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('exits 5 on a log of another identity for the database, naming both', async () => {
    expect((await runCli(['snapshot'], { cwd: project, env })).exitCode).toBe(0);
    const anchored = JSON.parse(readFileSync(path.join(project, 'evidence', 'audit.jsonl'), 'utf8').split('\n')[0]!) as { hash: string };
    // Another log, started on another database, pointed at this one.
    const other = await createTestDatabase('other');
    const ev = await createEvidence();
    try {
      expect((await runCli(['snapshot'], { env: { ...ev.env, DATABASE_URL: other.url } })).exitCode).toBe(0);
      const otherId = (JSON.parse(readFileSync(path.join(ev.evidenceDir, 'audit.jsonl'), 'utf8').split('\n')[0]!) as { hash: string }).hash;
      const before = readFileSync(path.join(ev.evidenceDir, 'audit.jsonl'), 'utf8');
      for (const args of [['log'], ['check'], ['snapshot']]) {
        const r = await runCli(args, { env: { ...ev.env, DATABASE_URL: ws.t.url } });
        expect({ args, code: r.exitCode }).toEqual({ args, code: 5 });
        expect(r.stderr).toContain(`is log ${otherId.slice(0, 16)}`);
        expect(r.stderr).toContain(`anchors log ${anchored.hash.slice(0, 16)}`);
      }
      expect(readFileSync(path.join(ev.evidenceDir, 'audit.jsonl'), 'utf8')).toBe(before);
    } finally {
      await ev.cleanup();
      await other.drop();
    }
  });
});

describe('alerts that stay up until someone answers them', () => {
  let ws: Workspace;
  afterEach(async () => {
    await ws.cleanup();
  });

  it('knows a critical table from a script alone (no config entry): critical-empty', async () => {
    ws = await createWorkspace();
    ws.writeConfig({ scriptsDir: ws.scriptsDir });
    ws.writeScript(
      'purge-clients.sql',
      '-- @description Purge test clients\n-- @touches oauth_clients: delete\n-- @critical oauth_clients\ndelete from oauth_clients where false;\n',
    );
    expect((await ws.cli(['snapshot'])).exitCode).toBe(0);
    await outOfBand(ws.t.url, 'delete from oauth_clients');
    const check = await ws.cli(['check', '--json']);
    expect(check.exitCode).toBe(10);
    const result = parseJson<CheckResult>(check);
    expect(openOf(result)).toContainEqual(expect.objectContaining({ kind: 'critical-empty', table: 'public.oauth_clients', after: 0 }));
    expect(result.critical['public.oauth_clients']).toEqual({ rows: 0, declaredBy: ['purge-clients'] });
  });

  it('keeps a finding open across a snapshot and a dry run until it is acknowledged', async () => {
    ws = await createWorkspace();
    expect((await ws.cli(['snapshot'])).exitCode).toBe(0);
    await outOfBand(ws.t.url, 'delete from users', { table: 'users', column: 'n_tup_del', atLeast: 8 });
    const first = parseJson<CheckResult>(await ws.cli(['check', '--json']));
    const empty = openOf(first).find((f) => f.kind === 'critical-empty' && f.table === 'public.users')!;
    expect(empty.id).toMatch(/^critical-empty-[0-9a-f]{8}$/);
    expect(empty.firstSeen.seq).toBeNull(); // only the live database shows it so far

    expect((await ws.cli(['snapshot', '--label', 'cron'])).exitCode).toBe(0);
    expect((await ws.cli(['cleanup-invalid-sessions', '--dry-run'])).exitCode).toBe(0);
    const later = await ws.cli(['check', '--json']);
    expect(later.exitCode).toBe(10);
    const still = parseJson<CheckResult>(later);
    const same = openOf(still).find((f) => f.id === empty.id)!;
    expect(same).toMatchObject({ kind: 'critical-empty', table: 'public.users', firstSeen: { seq: 2, kind: 'snapshot' } });
    expect(still.against.seq).toBeGreaterThan(2);

    const human = await ws.cli(['check']);
    expect(human.stdout).toContain(`${empty.id}  first seen #2 snapshot at`);
    // One copy-pasteable line acknowledges every open finding.
    const ackLine = /once answered: (safe-run ack .*)$/m.exec(human.stdout)?.[1];
    expect(ackLine).toBe(
      `safe-run ack ${openOf(still)
        .map((f) => f.id)
        .join(' ')} --reason "what happened and what was done"`,
    );

    const unknown = await ws.cli(['ack', 'critical-empty-00000000', '--reason', 'x']);
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr).toMatch(/No open finding "critical-empty-00000000"/);

    const ids = openOf(still).map((f) => f.id);
    const ack = await ws.cli(['ack', ...ids, '--reason', 'users deleted by hand in staging; restored from the seed', '--json']);
    expect(ack.exitCode).toBe(0);
    expect(parseJson<{ acknowledged: unknown[]; open: string[] }>(ack)).toMatchObject({ open: [] });
    expect(parseJson<{ acknowledged: unknown[] }>(ack).acknowledged).toHaveLength(ids.length);

    const after = await ws.cli(['check', '--json']);
    expect(after.exitCode).toBe(0);
    expect(parseJson<CheckResult>(after)).toMatchObject({ status: 'clean', acknowledged: ids.length });
    // The ack is a signed entry of the chain.
    expect((await ws.cli(['verify'])).exitCode).toBe(0);
    expect((await ws.cli(['ack', empty.id, '--reason', 'again'])).stderr).toMatch(/already acknowledged/);
  }, 240_000);

  it('writes the textfile-collector format with the open findings, critical rows and observation age', async () => {
    ws = await createWorkspace({ criticalTables: { users: {} } });
    expect((await ws.cli(['snapshot'])).exitCode).toBe(0);
    await outOfBand(ws.t.url, "delete from users where email like '%example.com'", { table: 'users', column: 'n_tup_del', atLeast: 3 });
    const r = await ws.cli(['check', '--format', 'prometheus']);
    expect(r.exitCode).toBe(10);
    const samples = new Map<string, number>();
    for (const line of r.stdout.trimEnd().split('\n')) {
      if (line.startsWith('#')) {
        expect(line).toMatch(/^# (HELP|TYPE) safe_run_[a-z_]+ .+$/);
        continue;
      }
      const m = /^([a-z_]+)\{([^}]*)\} (-?[0-9.]+(?:e[+-]?\d+)?|NaN)$/.exec(line);
      expect({ line, parsed: m !== null }).toEqual({ line, parsed: true });
      samples.set(`${m![1]}{${m![2]!.replace(/database="[^"]*",?/, '')}}`, Number(m![3]));
    }
    expect(samples.get('safe_run_open_findings{kind="critical-drop"}')).toBe(1);
    expect(samples.get('safe_run_open_findings{kind="critical-empty"}')).toBe(0);
    expect(samples.get('safe_run_open_findings{kind="count-changed"}')).toBeGreaterThanOrEqual(1);
    expect(samples.get('safe_run_critical_table_rows{table="public.users"}')).toBe(5);
    expect(samples.get('safe_run_last_observation_age_seconds{}')).toBeGreaterThanOrEqual(0);
  });
});

describe('a table counted by estimate', () => {
  let ws: Workspace;
  beforeEach(async () => {
    ws = await createWorkspace({ exactCountThreshold: 1000 });
    await outOfBand(ws.t.url, 'create table big as select g as id from generate_series(1, 5000) g; analyze big', {
      table: 'big',
      column: 'n_tup_ins',
      atLeast: 5000,
    });
    // A stale estimate, as after many writes: the next ANALYZE refreshes it without a row changing.
    await outOfBand(ws.t.url, "update pg_class set reltuples = 3000 where oid = 'public.big'::regclass");
    expect((await ws.cli(['snapshot'])).exitCode).toBe(0);
  });
  afterEach(async () => {
    await ws.cleanup();
  });

  it('is not changed by an estimate refresh (ANALYZE), and is by a bulk delete the estimate did not see', async () => {
    await outOfBand(ws.t.url, 'analyze big');
    const refreshed = await ws.cli(['check', '--json']);
    expect(parseJson<CheckResult>(refreshed)).toMatchObject({ status: 'clean', findings: [] });
    const quiet = parseJson<{ changes: unknown[] }>(await ws.cli(['blame', 'big', '--json']));
    expect(quiet.changes).toEqual([]);
    expect((await ws.cli(['snapshot', '--label', 'after analyze'])).exitCode).toBe(0);

    await outOfBand(ws.t.url, 'delete from big where id <= 1000', { table: 'big', column: 'n_tup_del', atLeast: 1000 });
    const check = await ws.cli(['check', '--json']);
    expect(check.exitCode).toBe(10);
    expect(openOf(parseJson<CheckResult>(check))).toContainEqual(
      expect.objectContaining({
        kind: 'count-changed',
        table: 'public.big',
        rowsKind: 'estimate',
        deltas: { inserted: 0, updated: 0, deleted: 1000 },
      }),
    );
    const blame = parseJson<{ changes: { counters?: { deleted: number }; attribution: { type: string } }[] }>(
      await ws.cli(['blame', 'big', '--json']),
    );
    expect(blame.changes).toHaveLength(1);
    expect(blame.changes[0]).toMatchObject({ counters: { deleted: 1000 }, attribution: { type: 'outside' } });
  });
});

describe('safe-run init', () => {
  it('writes a config, the key and the evidence directory, runs doctor, and never overwrites', async () => {
    const t = await createTestDatabase('init');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'safe-run-init-'));
    const key = path.join(dir, 'private', 'signing.key');
    const env = { APP_DB: t.url };
    try {
      const r = await runCli(['init', '--critical', 'users', '--database-env', 'APP_DB', '--signing-key', key], { cwd: dir, env });
      expect({ code: r.exitCode, out: text(r) }).toMatchObject({ code: 0 });
      expect(r.stdout).toMatch(/All checks passed/);
      const written = readFileSync(path.join(dir, 'safe-run.config.json'), 'utf8');
      expect(JSON.parse(written)).toEqual({
        databaseEnv: 'APP_DB',
        scriptsDir: 'scripts',
        evidenceDir: 'snapshots',
        signingKey: key,
        criticalTables: { users: { maxDropPercent: 10 } },
      });
      expect(statSync(key).mode & 0o777).toBe(0o600);
      expect(statSync(path.join(dir, 'snapshots')).mode & 0o777).toBe(0o700);

      const again = await runCli(['init'], { cwd: dir, env });
      expect(again.exitCode).toBe(2);
      expect(again.stderr).toMatch(/already exists; init does not overwrite a config/);
      expect(readFileSync(path.join(dir, 'safe-run.config.json'), 'utf8')).toBe(written);

      // The project works from a subdirectory right away, on the URL named by databaseEnv.
      mkdirSync(path.join(dir, 'scripts', 'sub'), { recursive: true });
      expect((await runCli(['snapshot'], { cwd: path.join(dir, 'scripts', 'sub'), env })).exitCode).toBe(0);
      expect(existsSync(path.join(dir, 'snapshots', 'audit.jsonl'))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await t.drop();
    }
  });
});
