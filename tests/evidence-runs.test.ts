import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import { openAuditLog } from '../src/audit/log.js';
import { createDb } from '../src/db/connection.js';
import type { BlameResult } from '../src/blame/blame.js';
import type { CheckResult } from '../src/history/check.js';
import { driftBeforeRun } from '../src/history/before-run.js';
import { diffSnapshots } from '../src/snapshot/diff.js';
import type { History } from '../src/history/run-log.js';
import type { RunRecord } from '../src/history/run-record.js';
import { silentLogger } from '../src/logger.js';
import type { RunResult } from '../src/run/types.js';
import type { RunIntentBody, RunOutcomeBody, Snapshot } from '../src/records/index.js';
import { takeSnapshot } from '../src/snapshot/take.js';
import { CLI_PATH, parseJson } from './helpers/cli.js';
import { createWorkspace, type Workspace } from './helpers/workspace.js';

/**
 * Runs as the evidence commands read them back: outcomes settled by txid_status, a run whose
 * bracket another session wrote into, prefixes, filters, and the log-only modes.
 */
const snapshotOf = async (ws: Workspace): Promise<Snapshot> =>
  (await takeSnapshot(ws.t.db, { exactCountThreshold: 1_000_000, url: new URL(ws.t.url) })).snapshot;

function intentBody(snapshot: Snapshot, name: string): RunIntentBody {
  return {
    script: {
      name,
      kind: 'sql',
      path: `/scripts/${name}.sql`,
      sha256: 'a'.repeat(64),
      git: null,
      touches: { 'public.oidc_models': ['delete'] },
      limits: {},
      critical: [],
    },
    args: [],
    dryRun: false,
    operator: { osUser: 'ops', gitUser: null, gitEmail: null },
    host: 'bastion',
    reason: null,
    url: 'postgres://ops@db/app',
    snapshot,
    backup: { scope: 'none', status: 'skipped', path: null, format: null, sha256: null, bytes: 0, tables: [], pgDump: null, durationMs: 0 },
  };
}

function committingOutcome(xid: string, deleted: number): RunOutcomeBody {
  return {
    status: 'committing',
    changes: { 'public.oidc_models': { inserted: 0, updated: 0, deleted, truncated: false } },
    inTxCounts: {},
    violations: [],
    error: null,
    timingsMs: {},
    xid,
    walLsnStart: null,
    sequencesUsed: [],
    drift: [],
  };
}

/** A transaction that really committed (or rolled back), to give txid_status something to say. */
async function realXid(ws: Workspace, commit: boolean): Promise<string> {
  const trx = await ws.t.db.startTransaction().execute();
  const { rows } = await sql<{ xid: string }>`select txid_current()::text as xid`.execute(trx);
  await sql`delete from oidc_models where id = 'interaction-8'`.execute(trx);
  if (commit) await trx.commit().execute();
  else await trx.rollback().execute();
  return rows[0]!.xid;
}

describe('evidence about runs', () => {
  let ws: Workspace;
  beforeEach(async () => {
    ws = await createWorkspace({ criticalTables: { users: { maxDropPercent: 10 } } });
  });
  afterEach(async () => {
    await ws.cleanup();
  });

  it('settles `committing` outcomes without run.post through txid_status', async () => {
    const audit = await openAuditLog({ evidenceDir: ws.evidenceDir, signingKeyPath: ws.env.SAFE_RUN_SIGNING_KEY!, log: silentLogger });
    const snapshot = await snapshotOf(ws);
    await audit.append('run.intent', intentBody(snapshot, 'aborted-one'), { runId: '01AAAAAAAAAAAAAAAAAAAAAAAA' });
    await audit.append('run.outcome', committingOutcome(await realXid(ws, false), 1), { runId: '01AAAAAAAAAAAAAAAAAAAAAAAA' });
    await audit.append('run.intent', intentBody(snapshot, 'committed-one'), { runId: '01BBBBBBBBBBBBBBBBBBBBBBBB' });
    await audit.append('run.outcome', committingOutcome(await realXid(ws, true), 1), { runId: '01BBBBBBBBBBBBBBBBBBBBBBBB' });

    const check = await ws.cli(['check', '--json']);
    expect(check.exitCode).toBe(10);
    const interrupted = parseJson<CheckResult>(check).findings.filter((f) => f.kind === 'interrupted-run');
    expect(interrupted).toEqual([
      expect.objectContaining({
        runId: '01AAAAAAAAAAAAAAAAAAAAAAAA',
        status: 'aborted',
        detail: expect.stringMatching(/txid_status\(\d+\) = aborted/),
      }),
      expect.objectContaining({
        runId: '01BBBBBBBBBBBBBBBBBBBBBBBB',
        status: 'committed',
        detail: expect.stringMatching(/txid_status\(\d+\) = committed/),
      }),
    ]);

    const log = parseJson<History>(await ws.cli(['log', '--json']));
    expect(log.runs.map((r) => [r.script, r.status])).toEqual([
      ['aborted-one', 'aborted'],
      ['committed-one', 'committed'],
    ]);
    expect((await ws.cli(['log'])).stdout).toMatch(/01BBBBBBBBBBBBBBBBBBBBBBBB: no run\.post entry; txid_status\(\d+\) = committed/);
    const show = parseJson<RunRecord>(await ws.cli(['show', '01B', '--json']));
    expect(show.status).toMatchObject({ status: 'committed', committed: true });

    // Without a database, nothing can be settled, and log says so rather than guessing.
    const offline = parseJson<History>(await ws.cli(['log', '--json', '--db', 'postgres://nobody@127.0.0.1:1/none']));
    expect(offline.runs.map((r) => r.status)).toEqual(['committing', 'committing']);
  });

  it("splits a run's bracket: its own deletes to the run, another session's to that session, during the run", async () => {
    ws.writeScript(
      'slow-purge.ts',
      `import { defineScript, sql } from 'safe-run';
export default defineScript({
  name: 'slow-purge',
  description: 'deletes two interactions, then takes its time',
  touches: { oidc_models: ['delete'] },
  async run({ db }) {
    await sql\`delete from oidc_models where id in ('interaction-1', 'interaction-2')\`.execute(db);
    await sql\`select pg_sleep(2.5)\`.execute(db);
  },
});
`,
    );
    const child = execa(process.execPath, [CLI_PATH, 'slow-purge', '--json'], { cwd: ws.cwd, env: { ...ws.env }, reject: false });
    const log = path.join(ws.evidenceDir, 'audit.jsonl');
    for (let i = 0; i < 300; i++) {
      await new Promise((r) => setTimeout(r, 50));
      if (readFileSync(log, { encoding: 'utf8', flag: 'a+' }).includes('"kind":"run.intent"')) break;
    }
    // Someone else's session, while the run's transaction is open.
    const other = createDb(ws.t.url, { maxConnections: 1 });
    await sql`delete from oidc_models where id in ('interaction-3', 'interaction-4', 'interaction-5')`.execute(other);
    await other.destroy();
    const done = await child;
    const run = parseJson<RunResult>({ exitCode: done.exitCode ?? -1, stdout: String(done.stdout), stderr: String(done.stderr) });
    expect(run.status).toBe('committed');

    const blame = parseJson<BlameResult>(await ws.cli(['blame', 'oidc_models', '--json']));
    const pre = run.counts.pre['public.oidc_models']!;
    expect(blame.changes).toEqual([
      expect.objectContaining({
        before: pre,
        after: pre - 2,
        change: expect.objectContaining({ deleted: 2 }),
        attribution: { type: 'run', runId: run.runId, script: 'slow-purge' },
      }),
      expect.objectContaining({
        before: pre - 2,
        after: pre - 5,
        attribution: expect.objectContaining({
          type: 'concurrent',
          runId: run.runId,
          after: expect.stringMatching(/run\.intent of slow-purge/),
          before: expect.stringMatching(/run\.post of slow-purge/),
        }),
      }),
    ]);
  });

  it('finds runs by prefix, refuses ambiguous and unknown ones, and reports on a run', async () => {
    const first = parseJson<RunResult>(await ws.cli(['cleanup-invalid-sessions', '--json']));
    const second = parseJson<RunResult>(await ws.cli(['cleanup-invalid-sessions', '--json']));
    let common = 0;
    while (first.runId[common] === second.runId[common]) common++;
    const ambiguous = await ws.cli(['show', first.runId.slice(0, common)]);
    expect(ambiguous.exitCode).toBe(2);
    expect(ambiguous.stderr).toMatch(/matches 2 runs/);
    expect((await ws.cli(['show', 'ZZZZZZ'])).exitCode).toBe(2);

    const report = await ws.cli(['report', first.runId]);
    expect(report.exitCode).toBe(0);
    expect(report.stdout).toContain(`# Run report: cleanup-invalid-sessions \`${first.runId}\``);
    expect(report.stdout).toMatch(
      /cleanup-invalid-sessions deleted 5 rows from oidc_models, and 0 rows in the \d+ other table\(s\), including `public.users`/,
    );

    // The second run found nothing to delete: a change of 0 is not a change.
    expect(parseJson<History>(await ws.cli(['log', '--table', 'oidc_models', '--json'])).runs.map((r) => r.runId)).toEqual([first.runId]);
    expect(parseJson<History>(await ws.cli(['log', '--script', 'nope', '--json'])).runs).toEqual([]);
  });

  it('blames from the log alone (--no-live), and --since keeps a baseline', async () => {
    const run = parseJson<RunResult>(await ws.cli(['cleanup-invalid-sessions', '--json']));
    const offline = await ws.cli(['blame', 'oidc_models', '--no-live', '--json', '--db', 'postgres://nobody@127.0.0.1:1/none']);
    expect(offline.exitCode).toBe(0);
    const blame = parseJson<BlameResult>(offline);
    expect(blame.observations.map((o) => o.kind)).toEqual(['run.intent', 'run.post']);
    expect(blame.changes).toEqual([expect.objectContaining({ attribution: expect.objectContaining({ runId: run.runId }) })]);

    const future = parseJson<BlameResult>(await ws.cli(['blame', 'oidc_models', '--since', '2999-01-01', '--json']));
    expect(future.changes).toEqual([]);
    expect(future.observations).toHaveLength(1);
    expect((await ws.cli(['blame', 'no_such_table'])).exitCode).toBe(2);
  });

  it('diffSnapshots finds nothing between a snapshot and itself, and the delete between two', async () => {
    const before = await snapshotOf(ws);
    expect(diffSnapshots(before, before, { criticalTables: {} })).toEqual([]);
    await sql`delete from oauth_clients where client_id = 'cli'`.execute(ws.t.db);
    const after = await snapshotOf(ws);
    expect(diffSnapshots(before, after, { criticalTables: {} })).toEqual([
      expect.objectContaining({ kind: 'count-changed', table: 'public.oauth_clients', before: 4, after: 3 }),
    ]);
  });

  it("puts an interrupted run into the next run's drift; check keeps it open until it is acknowledged", async () => {
    const audit = await openAuditLog({ evidenceDir: ws.evidenceDir, signingKeyPath: ws.env.SAFE_RUN_SIGNING_KEY!, log: silentLogger });
    const snapshot = await snapshotOf(ws);
    await audit.append('run.intent', intentBody(snapshot, 'killed'), { runId: '01KKKKKKKKKKKKKKKKKKKKKKKK' });
    const drift = await driftBeforeRun({ evidenceDir: ws.evidenceDir, criticalTables: {} }, await snapshotOf(ws), ws.t.db);
    expect(drift).toEqual([
      expect.objectContaining({ kind: 'interrupted-run', runId: '01KKKKKKKKKKKKKKKKKKKKKKKK', status: 'interrupted' }),
    ]);
    expect(parseJson<CheckResult>(await ws.cli(['check', '--json'])).findings).toEqual([
      expect.objectContaining({ kind: 'interrupted-run' }),
    ]);

    expect((await ws.cli(['cleanup-invalid-sessions'])).exitCode).toBe(0);
    // A later run records it in its drift, but only an operator's answer closes the alert.
    const still = parseJson<CheckResult>(await ws.cli(['check', '--json']));
    expect(still.status).toBe('drift');
    const [open] = still.findings as readonly { id?: string; kind: string }[];
    expect(open).toMatchObject({ kind: 'interrupted-run' });
    expect((await ws.cli(['ack', open!.id!, '--reason', 'test kill; nothing committed'])).exitCode).toBe(0);
    expect(parseJson<CheckResult>(await ws.cli(['check', '--json'])).status).toBe('clean');
    expect(parseJson<History>(await ws.cli(['log', '--json'])).runs[0]).toMatchObject({ script: 'killed', status: 'interrupted' });
  });
});
