import { sql } from 'kysely';
import type { BlameResult } from '../src/blame/blame.js';
import type { RecoverResult } from '../src/restore/recover.js';
import type { UndoResult } from '../src/restore/undo.js';
import type { RunResult } from '../src/run/types.js';
import { parseJson } from './helpers/cli.js';
import { countRows, writeAs } from './helpers/db.js';
import { rowsOf, USERS_FAMILY } from './helpers/rows.js';
import { createWorkspace, type Workspace } from './helpers/workspace.js';

/**
 * The change ledger and its readers together: `safe-run protect` installs the real statement
 * triggers, out-of-band writers on their own connections (as in the incident) delete or
 * truncate, and `recover` / `undo` put the rows back from what those triggers kept. The
 * recovery tests fill the ledger by hand; these prove the two layouts really agree.
 */

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

const ADD_USERS = `
import { defineScript, sql } from 'safe-run';
export default defineScript({
  name: 'add-users',
  description: 'inserts two users',
  touches: { users: ['insert'] },
  async run({ db }) {
    await sql\`insert into users (email, name) values ('new.one@example.com', 'New One'), ('new.two@example.com', 'New Two')\`.execute(db);
  },
});
`;

describe('recover and undo from the rows the real ledger triggers kept', () => {
  let ws: Workspace;
  beforeEach(async () => {
    ws = await createWorkspace({ criticalTables: { users: { maxDropPercent: 10 } } });
  });
  afterEach(async () => {
    await ws.cleanup();
  });

  it('an out-of-band DELETE FROM users by seed-script: blame names it, recover --ledger brings the users back, --with-dependents the children', async () => {
    // The cascade's children are protected with their rows too: recover can only bring back what was kept.
    const protect = await ws.cli(['protect', ...USERS_FAMILY, '--keep-rows']);
    expect(protect.exitCode).toBe(0);
    expect((await ws.cli(['snapshot'])).exitCode).toBe(0); // blame needs a count before the delete
    const before = await rowsOf(ws.t.db);
    expect(before.subscriptions!.length).toBeGreaterThan(0);
    expect(before.usage_events!.some((r) => (JSON.parse(r) as { user_id: string | null }).user_id !== null)).toBe(true);

    await writeAs(ws.t.url, 'seed-script', ['DELETE FROM users']);
    expect(await countRows(ws.t.db, 'users')).toBe(0);
    expect(await countRows(ws.t.db, 'subscriptions')).toBe(0);

    const blame = await ws.cli(['blame', 'users', '--json']);
    expect(blame.exitCode).toBe(0);
    const change = parseJson<BlameResult>(blame).changes.at(-1)!;
    expect(change.attribution).toMatchObject({
      type: 'session',
      statements: [expect.objectContaining({ applicationName: 'seed-script', op: 'DELETE', rows: before.users!.length })],
    });
    if (change.attribution.type !== 'session') throw new Error('blame did not name a session');
    const ledgerId = String(change.attribution.statements[0]!.ledgerId);

    const users = await ws.cli(['recover', '--ledger', ledgerId, '--json']);
    expect(users.exitCode).toBe(0);
    const usersBack = parseJson<RecoverResult>(users);
    expect(usersBack.run.status).toBe('committed');
    expect(usersBack.tables['public.users']).toMatchObject({ inserted: before.users!.length, skipped: 0 });
    expect((await rowsOf(ws.t.db, ['users'])).users).toEqual(before.users);
    expect(await countRows(ws.t.db, 'subscriptions')).toBe(0);

    const all = await ws.cli(['recover', '--ledger', ledgerId, '--with-dependents', '--json']);
    expect(all.exitCode).toBe(0);
    const allBack = parseJson<RecoverResult>(all);
    expect(allBack.tables['public.users']).toMatchObject({ inserted: 0, skipped: before.users!.length });
    expect(allBack.tables['public.subscriptions']).toMatchObject({ inserted: before.subscriptions!.length });
    expect(await rowsOf(ws.t.db)).toEqual(before);
  }, 240_000);

  it('an out-of-band TRUNCATE users CASCADE: recorded with its rows, and recover --table users --since brings all back', async () => {
    expect((await ws.cli(['protect', ...USERS_FAMILY, '--keep-rows'])).exitCode).toBe(0);
    const before = await rowsOf(ws.t.db);
    const { rows } = await sql<{ t: string }>`select (clock_timestamp() - interval '1 second')::text as t`.execute(ws.t.db);
    const since = new Date(rows[0]!.t).toISOString();

    await writeAs(ws.t.url, 'psql', ['TRUNCATE users CASCADE']);
    const { rows: recorded } = await sql<{ table_name: string; row_count: string; rows_kept: string }>`
      select table_name, row_count::text, rows_kept::text from safe_run.ledger where operation = 'TRUNCATE' order by table_name`.execute(
      ws.t.db,
    );
    expect(recorded).toEqual(
      USERS_FAMILY.map((t) => ({ table_name: t, row_count: String(before[t]!.length), rows_kept: String(before[t]!.length) })).sort(
        (a, b) => a.table_name.localeCompare(b.table_name),
      ),
    );

    const only = await ws.cli(['recover', '--table', 'users', '--since', since, '--json']);
    expect(only.exitCode).toBe(0);
    expect(parseJson<RecoverResult>(only).tables['public.users']).toMatchObject({ inserted: before.users!.length });
    expect((await rowsOf(ws.t.db, ['users'])).users).toEqual(before.users);

    const all = await ws.cli(['recover', '--table', 'users', '--since', since, '--with-dependents', '--json']);
    expect(all.exitCode).toBe(0);
    expect(await rowsOf(ws.t.db)).toEqual(before);
  }, 240_000);

  it('a recover whose rows refer to a parent that is gone too says to put the parent back first, and changes nothing', async () => {
    expect((await ws.cli(['protect', 'usage_events', '--keep-rows'])).exitCode).toBe(0);
    const { rows } = await sql<{ t: string }>`select (clock_timestamp() - interval '1 second')::text as t`.execute(ws.t.db);
    const since = new Date(rows[0]!.t).toISOString();
    // models is not protected: nothing keeps its rows, and usage_events refers to them.
    await writeAs(ws.t.url, 'psql', ['DELETE FROM usage_events', 'DELETE FROM models']);

    const recover = await ws.cli(['recover', '--table', 'usage_events', '--since', since]);
    expect(recover.exitCode).toBe(1);
    expect(recover.stdout).toContain('violates foreign key constraint');
    expect(recover.stdout).toContain('next: nothing was put back: these rows refer to rows of models that are not there now');
    expect(recover.stdout).toContain('`safe-run recover --table models --since <date>`');
    expect(recover.stdout).not.toContain('fix the script');
    expect(await countRows(ws.t.db, 'usage_events')).toBe(0);
  }, 240_000);

  it('undo of a guarded UPDATE sets the rows back; a row changed since by another session is a named conflict', async () => {
    expect((await ws.cli(['protect'])).exitCode).toBe(0); // users: critical, so protected with its rows
    ws.writeScript('rename-users.ts', RENAME);
    const before = await rowsOf(ws.t.db, ['users']);
    const run = parseJson<RunResult>(await ws.cli(['rename-users', '--json']));
    expect(run.status).toBe('committed');
    expect(run.changes['public.users']?.updated).toBe(2);

    await writeAs(ws.t.url, 'psql', ["update users set is_active = false where email = 'pro.user@example.com'"]);
    const refused = await ws.cli(['undo', run.runId]);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain('written by the run, changed since');
    expect(refused.stderr).not.toMatch(/\n\s+at /);
    expect((await rowsOf(ws.t.db, ['users'])).users).not.toEqual(before.users);

    await writeAs(ws.t.url, 'psql', ["update users set is_active = true where email = 'pro.user@example.com'"]);
    const undone = await ws.cli(['undo', run.runId, '--json']);
    expect(undone.exitCode).toBe(0);
    const result = parseJson<UndoResult>(undone);
    expect(result.sources).toEqual({ 'public.users': 'ledger' });
    expect(result.tables['public.users']).toMatchObject({ updated: 2 });
    expect(await rowsOf(ws.t.db, ['users'])).toEqual(before);
  }, 240_000);

  it('undo of a guarded INSERT deletes exactly the inserted rows, and names one changed since', async () => {
    // Undo is an ordinary guarded run: deleting 2 of 10 users is a 20% drop of a critical table,
    // which the default 10% of this workspace refuses (exit 3). Allow it, as an operator would.
    ws.writeConfig({ criticalTables: { users: { maxDropPercent: 25 } } });
    expect((await ws.cli(['protect'])).exitCode).toBe(0);
    ws.writeScript('add-users.ts', ADD_USERS);
    const before = await rowsOf(ws.t.db, ['users']);
    const run = parseJson<RunResult>(await ws.cli(['add-users', '--json']));
    expect(run.status).toBe('committed');
    expect(run.changes['public.users']?.inserted).toBe(2);

    await writeAs(ws.t.url, 'psql', ["update users set name = 'Edited' where email = 'new.two@example.com'"]);
    const refused = await ws.cli(['undo', run.runId]);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain('written by the run, changed since');
    expect(await countRows(ws.t.db, 'users')).toBe(before.users!.length + 2);

    await writeAs(ws.t.url, 'psql', ["update users set name = 'New Two' where email = 'new.two@example.com'"]);
    const undone = await ws.cli(['undo', run.runId, '--json']);
    expect(undone.exitCode).toBe(0);
    const result = parseJson<UndoResult>(undone);
    expect(result.sources).toEqual({ 'public.users': 'ledger' });
    expect(result.tables['public.users']).toMatchObject({ deleted: 2 });
    expect(await rowsOf(ws.t.db, ['users'])).toEqual(before);
  }, 240_000);

  it('recovers a protected table with an unusual name (schema with a space, quotes and upper case)', async () => {
    await sql
      .raw(
        `create schema "Odd Schema";
         create table "Odd Schema"."Mixed ""Case"" T" (id int primary key, "Note Text" text);
         insert into "Odd Schema"."Mixed ""Case"" T" select g, 'n' || g from generate_series(1, 5) g;`,
      )
      .execute(ws.t.db);
    const name = '"Odd Schema"."Mixed ""Case"" T"';
    const read = async (): Promise<string[]> =>
      (await sql<{ r: string }>`select to_jsonb(t)::text as r from ${sql.raw(name)} t order by id`.execute(ws.t.db)).rows.map((r) => r.r);
    expect((await ws.cli(['protect', name, '--keep-rows'])).exitCode).toBe(0);
    const before = await read();
    const since = new Date(Date.now() - 60_000).toISOString();

    await writeAs(ws.t.url, 'psql', [`delete from ${name} where id > 2`]);
    expect(await read()).toHaveLength(2);

    const back = await ws.cli(['recover', '--table', name, '--since', since, '--json']);
    expect(back.stderr).not.toMatch(/\n\s+at /);
    expect(back.exitCode).toBe(0);
    expect(Object.values(parseJson<RecoverResult>(back).tables)).toEqual([expect.objectContaining({ inserted: 3, skipped: 0 })]);
    expect(await read()).toEqual(before);
  }, 240_000);
  it('puts back the rows as sealed when the kept rows were edited in the database after the seal, and says so', async () => {
    await sql
      .raw("create table kept_notes (id int primary key, note text); insert into kept_notes values (1, 'one'), (2, 'two')")
      .execute(ws.t.db);
    expect((await ws.cli(['protect', 'kept_notes', '--keep-rows'])).exitCode).toBe(0);
    await writeAs(ws.t.url, 'psql', ['delete from kept_notes where id = 2']);
    expect((await ws.cli(['snapshot'])).exitCode).toBe(0); // a snapshot seals the ledger on the way
    const { rows } = await sql<{ id: string; sealed: boolean }>`
      select id::text, sealed_in is not null as sealed from safe_run.ledger where table_name = 'kept_notes' and operation = 'DELETE'`.execute(
      ws.t.db,
    );
    expect(rows).toEqual([{ id: expect.any(String), sealed: true }]);
    // Whoever may write safe_run forges what recover would put back.
    await sql`update safe_run.ledger set old_rows = '[{"id": 2, "note": "forged"}]' where id = ${rows[0]!.id}::int8`.execute(ws.t.db);

    const back = await ws.cli(['recover', '--ledger', rows[0]!.id, '--json']);
    expect(back.exitCode).toBe(0);
    expect(back.stderr).toMatch(new RegExp(`ledger statement ${rows[0]!.id}: its kept rows in the database differ from those sealed`));
    const now = await sql<{ id: number; note: string }>`select id, note from kept_notes order by id`.execute(ws.t.db);
    expect(now.rows).toEqual([
      { id: 1, note: 'one' },
      { id: 2, note: 'two' },
    ]);
  }, 240_000);
});
