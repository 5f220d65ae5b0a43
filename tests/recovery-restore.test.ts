import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import type { InPlaceResult } from '../src/restore/in-place.js';
import type { RunIntentBody } from '../src/records/index.js';
import type { RunResult } from '../src/run/types.js';
import { parseJson } from './helpers/cli.js';
import { countRows } from './helpers/db.js';
import { logLines } from './helpers/evidence.js';
import { rowsOf, USERS_FAMILY as FAMILY } from './helpers/rows.js';
import { createWorkspace, type Workspace } from './helpers/workspace.js';

/** restore --in-place from a real run's real pg_dump archive, into the live database, with the real pg_restore. */
describe('safe-run restore --in-place', () => {
  let ws: Workspace;
  let run: RunResult;

  beforeAll(async () => {
    ws = await createWorkspace({ criticalTables: { users: { maxDropPercent: 10 } } });
    const result = await ws.cli(['cleanup-invalid-sessions', '--json']);
    expect(result.exitCode).toBe(0);
    run = parseJson<RunResult>(result);
    // guarded scope: the critical users and its cascade children are in the cleanup's backup.
    expect(run.backup.tables).toEqual(expect.arrayContaining(FAMILY.map((t) => `public.${t}`)));
  });
  afterAll(async () => {
    await ws.cleanup();
  });

  it('brings back every row of users and of its cascaded children after an out-of-band DELETE FROM users', async () => {
    const before = await rowsOf(ws.t.db);
    expect(before.users!.length).toBeGreaterThan(0);
    expect(before.credit_allocation!.length).toBeGreaterThan(0);
    await sql`delete from users`.execute(ws.t.db);
    expect(await countRows(ws.t.db, 'credit_allocation')).toBe(0);

    const result = await ws.cli(['restore', run.runId, '--in-place', '--table', 'users', '--with-dependents', '--json']);
    expect(result.exitCode).toBe(0);
    const restored = parseJson<InPlaceResult>(result);
    expect(restored.run.status).toBe('committed');
    expect(restored.from.runId).toBe(run.runId);
    expect(restored.tables['public.users']).toMatchObject({ inserted: before.users!.length, skipped: 0 });
    expect(restored.run.changes['public.users']?.inserted).toBe(before.users!.length);
    // usage_events rows were kept by ON DELETE SET NULL: not re-inserted, their user_id set back.
    expect(restored.tables['public.usage_events']).toMatchObject({ inserted: 0, relinked: before.usage_events!.length });
    expect(await rowsOf(ws.t.db)).toEqual(before);

    // An ordinary guarded run: its own signed intent, declaring exactly insert on the restored tables.
    const intent = logLines(ws.evidenceDir)
      .map((l) => JSON.parse(l) as { kind: string; runId: string; body: RunIntentBody })
      .find((e) => e.kind === 'run.intent' && e.runId === restored.run.runId)!;
    expect(intent.body.script).toMatchObject({ name: 'restore-in-place', kind: 'builtin' });
    expect(intent.body.script.touches['public.users']).toEqual(['insert']);
    expect(intent.body.args).toContain(`from-run=${run.runId}`);
    expect((await ws.cli(['verify'])).exitCode).toBe(0);
  }, 240_000);

  it('skips and counts rows whose primary key exists now', async () => {
    const users = await countRows(ws.t.db, 'users');
    const again = parseJson<InPlaceResult>(await ws.cli(['restore', run.runId, '--in-place', '--table', 'users', '--json']));
    expect(again.run.exitCode).toBe(0);
    expect(again.tables['public.users']).toMatchObject({ offered: users, inserted: 0, skipped: users });
  }, 240_000);

  it('refuses a table without a primary key unless it is empty', async () => {
    await sql`create table notes (body text); insert into notes values ('a')`.execute(ws.t.db);
    const own = parseJson<RunResult>(await ws.cli(['run', 'cleanup-invalid-sessions', '--backup', 'full', '--json']));
    const refused = await ws.cli(['restore', own.runId, '--in-place', '--table', 'notes']);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain('public.notes has no primary key and is not empty');
    await sql`delete from notes`.execute(ws.t.db);
    const refilled = await ws.cli(['restore', own.runId, '--in-place', '--table', 'notes', '--json']);
    expect(refilled.exitCode).toBe(0);
    expect(await countRows(ws.t.db, 'notes')).toBe(1);
  }, 240_000);

  it('refuses a backup with one byte flipped (exit 5) and a missing one (exit 4)', async () => {
    const file = path.join(ws.evidenceDir, run.backup.path!);
    const original = readFileSync(file);
    const bytes = Buffer.from(original);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
    writeFileSync(file, bytes);
    const flipped = await ws.cli(['restore', run.runId, '--in-place', '--table', 'users']);
    expect(flipped.exitCode).toBe(5);
    expect(flipped.stderr).toContain('does not match');
    const scratch = await ws.cli(['restore', run.runId, '--table', 'users']);
    expect(scratch.exitCode).toBe(5);

    writeFileSync(file, original);
    const { rmSync } = await import('node:fs');
    rmSync(file);
    const missing = await ws.cli(['restore', run.runId, '--in-place', '--table', 'users']);
    expect(missing.exitCode).toBe(4);
    expect(missing.stderr).toContain('missing');
  }, 240_000);
});
