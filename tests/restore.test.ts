import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import { createDb } from '../src/db/connection.js';
import { withDatabase } from '../src/db/url.js';
import type { RestoreResult } from '../src/restore/types.js';
import type { RestoreBody } from '../src/records/index.js';
import type { RunResult } from '../src/run/types.js';
import { parseJson } from './helpers/cli.js';
import { countRows, serverUrl } from './helpers/db.js';
import { logLines } from './helpers/evidence.js';
import { createWorkspace, type Workspace } from './helpers/workspace.js';

/** `safe-run restore` from a real guarded run's real pg_dump archive, with the real pg_restore. */
describe('safe-run restore', () => {
  let ws: Workspace;
  let run: RunResult;
  const scratchDbs: string[] = [];

  const dropScratch = async (name: string): Promise<void> => {
    const admin = createDb(serverUrl(), { maxConnections: 1 });
    try {
      await sql`drop database if exists ${sql.id(name)} with (force)`.execute(admin);
    } finally {
      await admin.destroy();
    }
  };

  beforeAll(async () => {
    ws = await createWorkspace();
    const result = await ws.cli(['cleanup-invalid-sessions', '--json']);
    expect(result.exitCode).toBe(0);
    run = parseJson<RunResult>(result);
    expect(run.counts.post['public.oidc_models']).toBeLessThan(run.counts.pre['public.oidc_models']!);
  });
  afterAll(async () => {
    for (const name of scratchDbs) await dropScratch(name);
    await ws.cleanup();
  });

  it('restores into a new scratch database with the pre-snapshot counts, and records a signed entry', async () => {
    const scratch = `${ws.t.name}_restore_${run.runId.slice(0, 10).toLowerCase()}`;
    scratchDbs.push(scratch);
    const result = await ws.cli(['restore', run.runId.slice(0, 12).toLowerCase(), '--json']);
    expect(result.exitCode).toBe(0);
    const restored = parseJson<RestoreResult>(result);
    const pre = run.counts.pre['public.oidc_models']!;
    expect(restored).toMatchObject({
      runId: run.runId,
      source: 'cleanup-invalid-sessions',
      mode: 'scratch',
      database: scratch,
    });
    // guarded scope: the script's critical users and its cascade children came along.
    expect(restored.tables).toEqual(run.backup.tables);
    expect(restored.tables).toEqual(expect.arrayContaining(['public.oidc_models', 'public.users']));
    expect(restored.counts['public.oidc_models']).toEqual({ restored: pre, pre, preKind: 'exact' });
    // Hints safe to paste: the full connection of the database each one is for, no password,
    // and rows go back only through --in-place (never a bare \copy into a table with rows).
    const port = new URL(ws.t.url).port;
    const next = restored.next.join('\n');
    expect(next).toContain(`psql "host=127.0.0.1 port=${port} user=postgres dbname=${scratch}"`);
    expect(next).toContain(`dropdb --host=127.0.0.1 --port=${port} --username=postgres ${scratch}`);
    expect(next).toContain(`safe-run restore ${run.runId} --in-place --table public.credit_allocation --table public.oidc_models`);
    expect(next).not.toContain('\\copy');

    const db = createDb(withDatabase(serverUrl(), scratch));
    try {
      expect(await countRows(db, 'oidc_models')).toBe(pre);
    } finally {
      await db.destroy();
    }
    const last = JSON.parse(logLines(ws.evidenceDir).at(-1)!) as { kind: string; runId: string; body: RestoreBody };
    expect(last.kind).toBe('restore');
    expect(last.runId).toBe(run.runId);
    expect(last.body.archive.sha256).toBe(run.backup.sha256);
    expect(last.body.target).toContain(scratch);
    expect((await ws.cli(['verify'])).exitCode).toBe(0);

    // The scratch database is never reused.
    const again = await ws.cli(['restore', run.runId]);
    expect(again.exitCode).toBe(2);
    expect(again.stderr).toContain('already exists');
  });

  it('refuses a --table that is not in the backup (exit 2) and an unknown run (exit 2)', async () => {
    const table = await ws.cli(['restore', run.runId, '--table', 'models']);
    expect(table.exitCode).toBe(2);
    expect(table.stderr).toContain('public.models is not in the backup');
    expect((await ws.cli(['restore', 'ZZZZZZ'])).exitCode).toBe(2);
  });

  it('exits 4 for a run without a backup', async () => {
    const none = parseJson<RunResult>(await ws.cli(['cleanup-invalid-sessions', '--json', '--backup', 'none']));
    const result = await ws.cli(['restore', none.runId]);
    expect(result.exitCode).toBe(4);
    expect(result.stderr).toContain('backup scope "none"');
  });

  it('--into fills empty existing tables, and refuses tables that have rows', async () => {
    const refused = await ws.cli(['restore', run.runId, '--into', ws.t.url]);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain('public.oidc_models is not empty');

    // One session, its counters flushed at once: the restore's snapshot must already see this
    // delete, or check would find it later as a change outside any run (idle backends flush after 10 s).
    await ws.t.db.connection().execute(async (c) => {
      await sql`delete from oidc_models`.execute(c);
      await sql`select pg_stat_force_next_flush()`.execute(c);
    });
    const result = await ws.cli(['restore', run.runId, '--table', 'oidc_models', '--into', ws.t.url, '--json']);
    expect(result.exitCode).toBe(0);
    expect(parseJson<RestoreResult>(result).mode).toBe('into');
    expect(await countRows(ws.t.db, 'oidc_models')).toBe(run.counts.pre['public.oidc_models']);
    // The delete outside any run stays an open finding (a restore does not answer it); the
    // restore entry carries a snapshot, so once acknowledged the refilled table is not drift.
    const check = await ws.cli(['check', '--json']);
    expect(check.exitCode).toBe(10);
    const findings = parseJson<{ findings: { id: string; kind: string; table?: string }[] }>(check).findings;
    expect(findings.map((f) => `${f.kind} ${f.table}`)).toEqual(['count-changed public.oidc_models']);
    expect((await ws.cli(['ack', findings[0]!.id, '--reason', 'emptied by the test, restored from the run'])).exitCode).toBe(0);
    expect((await ws.cli(['check', '--json'])).exitCode).toBe(0);
  });

  it('refuses an archive whose bytes changed since the signed intent (exit 5), naming both hashes', async () => {
    const file = path.join(ws.evidenceDir, run.backup.path!);
    const bytes = readFileSync(file);
    const middle = Math.floor(bytes.length / 2);
    bytes[middle] = bytes[middle]! ^ 0xff;
    writeFileSync(file, bytes);
    const result = await ws.cli(['restore', run.runId, '--table', 'oidc_models']);
    expect(result.exitCode).toBe(5);
    expect(result.stderr).toContain(run.backup.sha256!);
    expect(result.stderr).toMatch(/its sha256 is [0-9a-f]{64}/);
  });
});
