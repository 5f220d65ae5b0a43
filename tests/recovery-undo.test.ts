import { sql } from 'kysely';
import type { UndoResult } from '../src/restore/undo.js';
import type { RunResult } from '../src/run/types.js';
import type { Db } from '../src/db/connection.js';
import { parseJson } from './helpers/cli.js';
import { createLedger, recordStatement } from './helpers/ledger.js';
import { createWorkspace, type Workspace } from './helpers/workspace.js';

async function sessions(db: Db): Promise<string[]> {
  const { rows } = await sql<{ r: string }>`select to_jsonb(o)::text as r from oidc_models o order by o.id`.execute(db);
  return rows.map((row) => row.r);
}

async function usersById(db: Db): Promise<string[]> {
  const { rows } = await sql<{ r: string }>`select to_jsonb(u)::text as r from users u order by u.id`.execute(db);
  return rows.map((row) => row.r);
}

const RENAME = `
import { defineScript, sql } from 'safe-run';
export default defineScript({
  name: 'rename-users',
  description: 'updates two users',
  touches: { users: ['update'] },
  async run({ db }) {
    await sql\`update users set name = name || ' (renamed)' where email in ('free.user@example.com', 'pro.user@example.com')\`.execute(db);
  },
});
`;

/** `safe-run undo`: the built CLI against a real PostgreSQL, its backups made by the real pg_dump. */
describe('safe-run undo', () => {
  let ws: Workspace;
  beforeEach(async () => {
    ws = await createWorkspace({ criticalTables: { users: { maxDropPercent: 10 } } });
  });
  afterEach(async () => {
    await ws.cleanup();
  });

  it('brings back exactly the sessions the cleanup deleted, and refuses when one was re-inserted since', async () => {
    const before = await sessions(ws.t.db);
    const cleanup = parseJson<RunResult>(await ws.cli(['cleanup-invalid-sessions', '--json']));
    const deleted = cleanup.changes['public.oidc_models']!.deleted;
    expect(deleted).toBeGreaterThan(1);

    // `last` is the newest committed run with a backup: the dry run since does not count.
    expect((await ws.cli(['cleanup-invalid-sessions', '--dry-run'])).exitCode).toBe(0);
    const undone = await ws.cli(['undo', 'last', '--json']);
    expect(undone.exitCode).toBe(0);
    const result = parseJson<UndoResult>(undone);
    expect(result.undone.runId).toBe(cleanup.runId);
    expect(result.sources).toEqual({ 'public.oidc_models': 'backup' });
    expect(result.tables['public.oidc_models']).toMatchObject({ inserted: deleted, skipped: 0 });
    expect(result.run.changes).toEqual({ 'public.oidc_models': expect.objectContaining({ inserted: deleted, deleted: 0 }) });
    expect(await sessions(ws.t.db)).toEqual(before);

    // Again: the cleanup deletes the same sessions; one of them is put back by hand before the undo.
    const again = parseJson<RunResult>(await ws.cli(['cleanup-invalid-sessions', '--json']));
    const now = new Set(await sessions(ws.t.db));
    const missing = before.filter((row) => !now.has(row));
    expect(missing).toHaveLength(deleted);
    const back = JSON.parse(missing[0]!) as { id: string };
    await sql`insert into oidc_models select * from jsonb_populate_record(null::oidc_models, ${missing[0]}::jsonb)`.execute(ws.t.db);

    const refused = await ws.cli(['undo', again.runId]);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain(`public.oidc_models ["${back.id}"]`);
    expect(refused.stderr).toContain('--skip-conflicts');
    expect((await sessions(ws.t.db)).length).toBe(before.length - deleted + 1);

    const rest = await ws.cli(['undo', again.runId, '--skip-conflicts', '--json']);
    expect(rest.exitCode).toBe(0);
    expect(parseJson<UndoResult>(rest).tables['public.oidc_models']).toMatchObject({ inserted: deleted - 1 });
    expect(await sessions(ws.t.db)).toEqual(before);
    expect((await ws.cli(['verify'])).exitCode).toBe(0);
  }, 240_000);

  it('refuses to undo updates from the backup alone, saying why', async () => {
    ws.writeScript('rename-users.ts', RENAME);
    const run = parseJson<RunResult>(await ws.cli(['rename-users', '--json']));
    expect(run.changes['public.users']?.updated).toBe(2);
    const refused = await ws.cli(['undo', run.runId]);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain('public.users: the run updated 2 rows');
    expect(refused.stderr).toContain('safe-run protect public.users --keep-rows');
  }, 240_000);

  it('sets updated rows back from the ledger, and names a row changed since', async () => {
    await createLedger(ws.t.db);
    ws.writeScript('rename-users.ts', RENAME);
    const before = await usersById(ws.t.db);
    const oldRows = await sql<{
      r: unknown;
    }>`select to_jsonb(u) as r from users u where email in ('free.user@example.com', 'pro.user@example.com')`.execute(ws.t.db);
    const run = parseJson<RunResult>(await ws.cli(['rename-users', '--json']));
    expect(run.status).toBe('committed');
    const xid = (await ws.cli(['show', run.runId, '--json'])).stdout.match(/"xid": "(\d+)"/)![1]!;
    // What the ledger's statement trigger records for the run's UPDATE: old and new rows as to_jsonb.
    const newRows = await sql<{ r: unknown }>`select to_jsonb(u) as r from users u where name like '% (renamed)'`.execute(ws.t.db);
    await recordStatement(ws.t.db, {
      xid,
      table: 'users',
      operation: 'UPDATE',
      old: oldRows.rows.map((r) => r.r),
      new: newRows.rows.map((r) => r.r),
    });

    // Someone changes one of the two since: a conflict, named; nothing is changed.
    await sql`update users set is_active = false where email = 'pro.user@example.com'`.execute(ws.t.db);
    const refused = await ws.cli(['undo', run.runId]);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain('written by the run, changed since');
    await sql`update users set is_active = true where email = 'pro.user@example.com'`.execute(ws.t.db);

    const undone = await ws.cli(['undo', run.runId, '--json']);
    expect(undone.exitCode).toBe(0);
    const result = parseJson<UndoResult>(undone);
    expect(result.sources).toEqual({ 'public.users': 'ledger' });
    expect(result.tables['public.users']).toMatchObject({ updated: 2 });
    expect(await usersById(ws.t.db)).toEqual(before);
  }, 240_000);
});
