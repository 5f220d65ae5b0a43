import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { auditLogPath } from '../src/audit/read.js';
import type { ExecResult } from '../src/exec/types.js';
import type { ExecIntentBody, ExecOutcomeBody } from '../src/records/index.js';
import { findBinDir } from '../src/backup/pg-bin-dirs.js';
import { parseJson } from './helpers/cli.js';
import { countRows } from './helpers/db.js';
import { logLines } from './helpers/evidence.js';
import { createWorkspace, type Workspace } from './helpers/workspace.js';

/** `safe-run exec` around a real psql, with real snapshots, a real pg_dump and the built CLI. */
const PSQL = path.join(findBinDir(['psql'])?.binDir ?? '/usr/lib/postgresql/15/bin', 'psql');

interface Entry<B> {
  readonly kind: string;
  readonly runId?: string;
  readonly body: B;
}

const entries = (ws: Workspace): Entry<unknown>[] =>
  existsSync(auditLogPath(ws.evidenceDir)) ? logLines(ws.evidenceDir).map((l) => JSON.parse(l) as Entry<unknown>) : [];

describe('safe-run exec', () => {
  let ws: Workspace;
  beforeEach(async () => {
    ws = await createWorkspace({ criticalTables: { users: { maxDropPercent: 10 } } });
  });
  afterEach(async () => {
    await ws.cleanup();
  });

  /** The URL with a password psql sends and trust authentication ignores: it must never be recorded. */
  const urlWithPassword = (): string => {
    const url = new URL(ws.t.url);
    url.password = 'hunter2';
    return url.href;
  };

  it('records users 8 -> 0 around an out-of-band delete, and exits 10 for the emptied critical table', async () => {
    const result = await ws.cli([
      'exec',
      '--label',
      'manual fix',
      '--json',
      '--',
      PSQL,
      '-q',
      urlWithPassword(),
      '-c',
      'delete from users',
    ]);
    expect(result.exitCode).toBe(10);
    const json = parseJson<ExecResult>(result);
    expect(json).toMatchObject({ status: 'completed', exitCode: 10, commandExitCode: 0, label: 'manual fix' });
    expect(json.changes['public.users']).toMatchObject({
      before: 8,
      after: 0,
      counters: { inserted: 0, updated: 0, deleted: 8 },
      recreated: false,
    });
    // The cascade shows up too: children of users lost their rows.
    expect(json.changes['public.subscriptions']).toMatchObject({ after: 0 });
    expect(json.findings).toContainEqual(expect.objectContaining({ kind: 'critical-empty', table: 'public.users' }));
    expect(await countRows(ws.t.db, 'users')).toBe(0);

    const log = entries(ws);
    expect(log.map((e) => e.kind)).toEqual(['exec.intent', 'exec.outcome']);
    const intent = log[0] as Entry<ExecIntentBody>;
    const outcome = log[1] as Entry<ExecOutcomeBody>;
    expect(intent.runId).toBe(json.runId);
    expect(intent.body.snapshot.tables['public.users']!.rows).toBe(8);
    expect(intent.body.backup).toMatchObject({ scope: 'full', status: 'verified' });
    expect(intent.body.backup.tables).toContain('public.users');
    expect(intent.body.command).toContain(urlWithPassword().replace('hunter2', '***'));
    expect(outcome.body.exitCode).toBe(0);
    expect(outcome.body.snapshot!.tables['public.users']!.rows).toBe(0);
    expect(outcome.body.changes['public.users']).toMatchObject({ before: 8, after: 0 });
    expect(readFileSync(auditLogPath(ws.evidenceDir), 'utf8')).not.toContain('hunter2');
    expect(result.stdout + result.stderr).not.toContain('hunter2');
    expect((await ws.cli(['verify'])).exitCode).toBe(0);

    // The backup taken before the command holds the users: they can be put back.
    const restored = await ws.cli(['restore', json.runId, '--table', 'users', '--into', ws.t.url]);
    expect(restored.exitCode).toBe(0);
    expect(await countRows(ws.t.db, 'users')).toBe(8);
  });

  it("passes the command's own failure through, and reports a non-critical loss without failing", async () => {
    const failed = await ws.cli([
      'exec',
      '--json',
      '--backup',
      'none',
      '--',
      process.execPath,
      '-e',
      'console.log("from the command"); process.exit(3)',
    ]);
    expect(failed.exitCode).toBe(3);
    // With --json, the command's stdout goes to stderr: stdout stays one JSON document.
    expect(failed.stderr).toContain('from the command');
    expect(parseJson<ExecResult>(failed)).toMatchObject({ status: 'failed', commandExitCode: 3, changes: {} });

    const loss = await ws.cli(['exec', '--json', '--backup', 'none', '--', PSQL, '-q', ws.t.url, '-c', 'delete from subscriptions']);
    expect(loss.exitCode).toBe(0);
    const json = parseJson<ExecResult>(loss);
    expect(json.changes['public.subscriptions']).toMatchObject({ before: 8, after: 0 });
    expect(json.findings).toContainEqual(
      expect.objectContaining({ kind: 'count-changed', table: 'public.subscriptions', before: 8, after: 0 }),
    );
    expect(json.backup.status).toBe('skipped');
  });

  it('runs nothing and records nothing for a command that does not exist (exit 2)', async () => {
    const result = await ws.cli(['exec', '--', 'no-such-command-anywhere']);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('Command not found');
    expect(entries(ws)).toEqual([]);
  });

  it('does not overlap a guarded run: exit 6 while the run lock is held, command not run', async () => {
    const holder = new pg.Client({ connectionString: ws.t.url, application_name: 'safe-run:cleanup-invalid-sessions:01TEST' });
    await holder.connect();
    try {
      await holder.query('select pg_advisory_lock(23294, 1)'); // 0x5afe, src/db/lock.ts
      const result = await ws.cli(['exec', '--', PSQL, '-q', ws.t.url, '-c', 'delete from users']);
      expect(result.exitCode).toBe(6);
      expect(result.stderr).toContain('cleanup-invalid-sessions');
      expect(await countRows(ws.t.db, 'users')).toBe(8);
    } finally {
      await holder.end();
    }
  });
});
