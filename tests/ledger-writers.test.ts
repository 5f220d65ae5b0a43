import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { sql } from 'kysely';
import { findBinDir } from '../src/backup/pg-bin-dirs.js';
import type { SessionStatement } from '../src/blame/attribute.js';
import type { BlameResult } from '../src/blame/blame.js';
import type { CheckResult } from '../src/history/check.js';
import { createDb } from '../src/db/connection.js';
import type { RecoverResult } from '../src/restore/recover.js';
import { parseJson } from './helpers/cli.js';
import { countRows, writeAs, type Writer } from './helpers/db.js';
import { rowsOf, USERS_FAMILY } from './helpers/rows.js';
import { createWorkspace, type Workspace } from './helpers/workspace.js';

/**
 * Issue 12's check: the incident (users emptied; its children go by ON DELETE CASCADE and
 * SET NULL) replayed by the kinds of out-of-band writers the other ledger suites do not
 * play: COPY, MERGE, a view, a SECURITY DEFINER function called by a plain role, SET ROLE,
 * a plpgsql loop, a cascade from an unprotected parent, two sessions at once, the
 * `prisma migrate reset` shape, pg_restore --clean and --data-only, the rename swap, and a
 * disabled ledger trigger. Each: blame names the right session, and recover brings back
 * exactly the rows (every column) that were there. Real server, real psql/pg_dump/pg_restore,
 * the built CLI.
 */
const BIN = findBinDir(['psql', 'pg_dump', 'pg_restore'])?.binDir ?? '/usr/lib/postgresql/15/bin';

/** A script through the real psql, as an operator (or a tool) would run it; prints `pid xid` of its transaction first. */
async function psqlAs(url: string, applicationName: string, script: string): Promise<Writer> {
  const { stdout } = await execa(path.join(BIN, 'psql'), ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-d', url, '-f', '-'], {
    input: `begin;\nselect pg_backend_pid() || ' ' || pg_current_xact_id();\n${script}\ncommit;\n`,
    env: { PGAPPNAME: applicationName },
  });
  const [pid, xid] = stdout.split('\n')[0]!.split(' ');
  return { pid: Number(pid), xid: xid! };
}

async function pgTool(tool: 'pg_dump' | 'pg_restore', applicationName: string, args: readonly string[]): Promise<void> {
  await execa(path.join(BIN, tool), args, { env: { PGAPPNAME: applicationName } });
}

/** The ledger statements blame names for the last change of a table (fails when it names none). */
async function blamed(ws: Workspace, table = 'users'): Promise<{ change: BlameResult['changes'][number]; statements: SessionStatement[] }> {
  const result = await ws.cli(['blame', table, '--json']);
  expect(result.exitCode).toBe(0);
  const change = parseJson<BlameResult>(result).changes.at(-1)!;
  if (change.attribution.type !== 'session') throw new Error(`blame named no session: ${JSON.stringify(change)}`);
  return { change, statements: [...change.attribution.statements] };
}

async function recover(ws: Workspace, args: readonly string[]): Promise<RecoverResult> {
  const result = await ws.cli(['recover', ...args, '--json']);
  if (result.exitCode !== 0) throw new Error(`recover exited ${result.exitCode}: ${result.stderr}`);
  return parseJson<RecoverResult>(result);
}

const ids = (statements: readonly SessionStatement[], op: string): string[] =>
  statements.filter((s) => s.op === op).flatMap((s) => ['--ledger', String(s.ledgerId)]);

/** A login role of this test only: roles are cluster-wide and test files run side by side. */
async function withRole(ws: Workspace): Promise<{ name: string; url: string; drop: () => Promise<void> }> {
  const name = `app_${randomBytes(4).toString('hex')}`;
  await sql.raw(`create role ${name} login; grant all on all tables in schema public to ${name}`).execute(ws.t.db);
  const url = new URL(ws.t.url);
  url.username = name;
  return {
    name,
    url: url.href,
    drop: async () => {
      await sql.raw(`drop owned by ${name}; drop role ${name}`).execute(ws.t.db);
    },
  };
}

describe('the incident replayed by other kinds of out-of-band writers', () => {
  let ws: Workspace;
  let before: Record<string, string[]>;
  beforeEach(async () => {
    ws = await createWorkspace({ criticalTables: { users: { maxDropPercent: 10 } } });
    expect((await ws.cli(['protect', ...USERS_FAMILY, '--keep-rows'])).exitCode).toBe(0);
    expect((await ws.cli(['snapshot'])).exitCode).toBe(0); // blame needs a count from before
    before = await rowsOf(ws.t.db);
  });
  afterEach(async () => {
    await ws.cleanup();
  });

  it('COPY ... FROM STDIN, then a DELETE: each named with its own session; recover brings back the copied rows too', async () => {
    const loader = await psqlAs(
      ws.t.url,
      'bulk-loader',
      'COPY users (id, email, name) FROM STDIN;\nc0c0c0c0-0000-4000-8000-000000000001\tcopied.one@example.com\tCopied One\nc0c0c0c0-0000-4000-8000-000000000002\tcopied.two@example.com\t\\N\n\\.',
    );
    const afterCopy = await rowsOf(ws.t.db);
    expect(afterCopy.users).toHaveLength(before.users!.length + 2);
    const seed = await writeAs(ws.t.url, 'seed-script', ['DELETE FROM users']);

    const { statements } = await blamed(ws);
    expect(statements).toEqual([
      expect.objectContaining({ op: 'INSERT', rows: 2, applicationName: 'bulk-loader', pid: loader.pid, xid: loader.xid, rowsKept: 2 }),
      expect.objectContaining({
        op: 'DELETE',
        rows: afterCopy.users!.length,
        applicationName: 'seed-script',
        pid: seed.pid,
        xid: seed.xid,
      }),
    ]);
    expect(statements[0]!.statement).toMatch(/^COPY\s+users/);

    await recover(ws, [...ids(statements, 'DELETE'), '--with-dependents']);
    expect(await rowsOf(ws.t.db)).toEqual(afterCopy);
  }, 240_000);

  it('MERGE ... WHEN MATCHED THEN DELETE fires the DELETE statement triggers: named as DELETE with the MERGE text', async () => {
    const merger = await writeAs(ws.t.url, 'merge-job', ['MERGE INTO users u USING users s ON u.id = s.id WHEN MATCHED THEN DELETE']);
    const { statements } = await blamed(ws);
    expect(statements).toEqual([
      expect.objectContaining({ op: 'DELETE', rows: before.users!.length, applicationName: 'merge-job', pid: merger.pid, xid: merger.xid }),
    ]);
    expect(statements[0]!.statement).toMatch(/^MERGE INTO users/);
    // Cascaded: the children's DELETEs (usage_events' ON DELETE SET NULL is an UPDATE, not counted).
    expect(statements[0]!.cascaded).toBe(before.credit_allocation!.length + before.subscriptions!.length);

    await recover(ws, [...ids(statements, 'DELETE'), '--with-dependents']);
    expect(await rowsOf(ws.t.db)).toEqual(before);
  }, 240_000);

  it('a plain role through a SECURITY DEFINER function is named by its own role, not the function owner', async () => {
    const role = await withRole(ws);
    try {
      await sql
        .raw(
          `create function purge_inactive() returns void language sql security definer as $$ delete from public.users $$;
           revoke all on function purge_inactive() from public; grant execute on function purge_inactive() to ${role.name}`,
        )
        .execute(ws.t.db);
      const caller = await writeAs(role.url, 'cron-purge', ['select purge_inactive()']);
      const { statements } = await blamed(ws);
      expect(statements).toEqual([
        expect.objectContaining({
          op: 'DELETE',
          rows: before.users!.length,
          role: role.name,
          outerRole: null,
          applicationName: 'cron-purge',
          pid: caller.pid,
          xid: caller.xid,
          statement: 'select purge_inactive()',
        }),
      ]);
      await recover(ws, [...ids(statements, 'DELETE'), '--with-dependents']);
      expect(await rowsOf(ws.t.db)).toEqual(before);
    } finally {
      await role.drop();
    }
  }, 240_000);

  it('SET ROLE, then a DELETE through an updatable view: the login role and the role it became are both named', async () => {
    const role = await withRole(ws);
    try {
      await sql.raw(`create view all_users as select * from users; grant all on all_users to ${role.name}`).execute(ws.t.db);
      const admin = await writeAs(ws.t.url, 'psql', [`set local role ${role.name}`, 'delete from all_users']);
      const { statements } = await blamed(ws);
      expect(statements).toEqual([
        expect.objectContaining({
          op: 'DELETE',
          rows: before.users!.length,
          role: 'postgres',
          outerRole: role.name,
          pid: admin.pid,
          xid: admin.xid,
        }),
      ]);
      const text = await ws.cli(['blame', 'users']);
      expect(text.stdout).toContain(`by role postgres (as ${role.name}), application "psql"`);
      await recover(ws, [...ids(statements, 'DELETE'), '--with-dependents']);
      expect(await rowsOf(ws.t.db)).toEqual(before);
    } finally {
      await sql`drop view if exists all_users`.execute(ws.t.db);
      await role.drop();
    }
  }, 240_000);

  it('a DO block deleting row by row: one statement per row, one transaction, all named and all recovered', async () => {
    const looper = await writeAs(ws.t.url, 'one-by-one', [
      'do $$ declare r record; begin for r in select id from users loop delete from users where id = r.id; end loop; end $$',
    ]);
    const { statements } = await blamed(ws);
    expect(statements).toHaveLength(before.users!.length);
    expect(new Set(statements.map((s) => JSON.stringify([s.op, s.rows, s.pid, s.xid, s.applicationName])))).toEqual(
      new Set([JSON.stringify(['DELETE', 1, looper.pid, looper.xid, 'one-by-one'])]),
    );
    const text = await ws.cli(['blame', 'users']);
    expect(text.stdout).toContain(`${before.users!.length} statement(s) named by the change ledger`);

    await recover(ws, [...ids(statements, 'DELETE'), '--with-dependents']);
    expect(await rowsOf(ws.t.db)).toEqual(before);
  }, 240_000);

  it('two sessions deleting at once: each named with its own pid and xid, neither given the other one’s rows', async () => {
    const one = createDb(ws.t.url, { applicationName: 'worker-a', maxConnections: 1 });
    const two = createDb(ws.t.url, { applicationName: 'worker-b', maxConnections: 1 });
    try {
      const a = await one.connection().execute(async (c) => {
        await sql`begin`.execute(c);
        const { rows } = await sql<Writer>`select pg_backend_pid() as pid, pg_current_xact_id()::text as xid`.execute(c);
        await sql`delete from users where email like '%@example.com'`.execute(c);
        // The other session deletes the rest while this one's transaction is still open.
        const b = await two.transaction().execute(async (t) => {
          const { rows: w } = await sql<Writer>`select pg_backend_pid() as pid, pg_current_xact_id()::text as xid`.execute(t);
          await sql`delete from users where email not like '%@example.com'`.execute(t);
          return w[0]!;
        });
        await sql`commit`.execute(c);
        return { a: rows[0]!, b };
      });
      const { statements } = await blamed(ws);
      const exampleUsers = before.users!.filter((r) => (JSON.parse(r) as { email: string }).email.endsWith('@example.com')).length;
      expect(
        statements.map((s) => ({ app: s.applicationName, pid: s.pid, xid: s.xid, rows: s.rows })).sort((x, y) => x.rows - y.rows),
      ).toEqual(
        [
          { app: 'worker-a', pid: a.a.pid, xid: a.a.xid, rows: exampleUsers },
          { app: 'worker-b', pid: a.b.pid, xid: a.b.xid, rows: before.users!.length - exampleUsers },
        ].sort((x, y) => x.rows - y.rows),
      );
      await recover(ws, [...ids(statements, 'DELETE'), '--with-dependents']);
      expect(await rowsOf(ws.t.db)).toEqual(before);
    } finally {
      await one.destroy();
      await two.destroy();
    }
  }, 240_000);

  it('a cascade from an unprotected parent: the protected children name the parent’s statement and session', async () => {
    // teams is not protected: its delete is not recorded, but the cascade into users is, under the same xid.
    await sql
      .raw(
        `create table teams (id int primary key, name text not null);
         insert into teams values (1, 'everyone');
         alter table users add column team_id int references teams(id) on delete cascade;
         update users set team_id = 1;`,
      )
      .execute(ws.t.db);
    expect((await ws.cli(['snapshot'])).exitCode).toBe(0);
    const withTeam = await rowsOf(ws.t.db);
    const remover = await writeAs(ws.t.url, 'admin-ui', ['DELETE FROM teams WHERE id = 1']);

    const { statements } = await blamed(ws);
    expect(statements).toEqual([
      expect.objectContaining({
        op: 'DELETE',
        rows: withTeam.users!.length,
        applicationName: 'admin-ui',
        pid: remover.pid,
        xid: remover.xid,
        statement: 'DELETE FROM teams WHERE id = 1',
      }),
    ]);
    // One ledger statement per protected table the cascade reached, all in the parent's transaction.
    const { rows: recorded } = await sql<{ table_name: string; n: number }>`
      select table_name, count(*)::int as n from safe_run.ledger where xid = ${remover.xid}::xid8 group by 1 order by 1`.execute(ws.t.db);
    expect(recorded).toEqual([
      { table_name: 'credit_allocation', n: 1 },
      { table_name: 'subscriptions', n: 1 },
      { table_name: 'usage_events', n: 1 },
      { table_name: 'users', n: 1 },
    ]);
    const children = await blamed(ws, 'subscriptions');
    expect(children.statements).toEqual([expect.objectContaining({ op: 'DELETE', applicationName: 'admin-ui', xid: remover.xid })]);

    // The parent's row was not kept (unprotected): it comes back from elsewhere first, then the rest from the ledger.
    await sql`insert into teams values (1, 'everyone')`.execute(ws.t.db);
    await recover(ws, [...ids(statements, 'DELETE'), '--with-dependents']);
    expect(await rowsOf(ws.t.db)).toEqual(withTeam);
  }, 240_000);

  it('the `prisma migrate reset` shape: DROP SCHEMA public CASCADE and the tables made again, empty', async () => {
    // usage_events refers to models: its rows can only come back if the models rows the reset dropped were kept too.
    expect((await ws.cli(['protect', 'models', '--keep-rows'])).exitCode).toBe(0);
    const models = await rowsOf(ws.t.db, ['models']);
    const dump = path.join(ws.cwd, 'schema.sql');
    await pgTool('pg_dump', 'test', ['--schema-only', '--no-owner', '-n', 'public', '-f', dump, ws.t.url]);
    // The dump makes the schema again (CREATE SCHEMA public), then the tables, empty.
    const reset = await writeAs(ws.t.url, 'prisma-migrate-reset', ['DROP SCHEMA public CASCADE']);
    await execa(path.join(BIN, 'psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', ws.t.url, '-f', dump], {
      env: { PGAPPNAME: 'prisma-migrate-reset' },
    });
    expect(await countRows(ws.t.db, 'users')).toBe(0);

    const { change, statements } = await blamed(ws);
    expect(change).toMatchObject({ before: before.users!.length, after: 0 });
    expect(statements).toContainEqual(
      expect.objectContaining({
        op: 'DROP',
        rows: before.users!.length,
        applicationName: 'prisma-migrate-reset',
        pid: reset.pid,
        xid: reset.xid,
      }),
    );
    await recover(ws, [...ids(statements, 'DROP'), '--with-dependents']);
    expect(await rowsOf(ws.t.db)).toEqual(before);
    expect(await rowsOf(ws.t.db, ['models'])).toEqual(models);
  }, 240_000);

  it('pg_restore --clean of an older dump: the DROP of each table is named with its rows; recover brings back the newer ones', async () => {
    const dump = path.join(ws.cwd, 'older.dump');
    await pgTool('pg_dump', 'test', ['-Fc', '-n', 'public', '-f', dump, ws.t.url]);
    await writeAs(ws.t.url, 'signup', ["insert into users (email, name) values ('late.signup@example.com', 'Late Signup')"]);
    const newer = await rowsOf(ws.t.db);
    await pgTool('pg_restore', 'nightly-restore', ['--clean', '-n', 'public', '-d', ws.t.url, dump]);
    expect(await countRows(ws.t.db, 'users')).toBe(before.users!.length);

    const { statements } = await blamed(ws);
    const drop = statements.find((s) => s.op === 'DROP')!;
    expect(drop).toMatchObject({ applicationName: 'nightly-restore', rows: newer.users!.length, rowsKept: newer.users!.length });
    // pg_restore drops each table in a transaction of its own: the family's drops are named one by one.
    const { rows: drops } = await sql<{ id: string }>`
      select id::text from safe_run.ledger where operation = 'DROP' and table_name = any(${[...USERS_FAMILY]}) and application_name = 'nightly-restore'`.execute(
      ws.t.db,
    );
    expect(drops).toHaveLength(USERS_FAMILY.length);
    const back = await recover(
      ws,
      drops.flatMap((d) => ['--ledger', d.id]),
    );
    expect(back.tables['public.users']).toMatchObject({ inserted: 1, skipped: before.users!.length });
    expect(await rowsOf(ws.t.db)).toEqual(newer);
  }, 240_000);

  it('a schema of many types comes back exactly as it was, as text: bigints past 2^53, long numerics, trailing zeros, bytea, arrays, jsonb', async () => {
    await sql
      .raw(
        `create type tier as enum ('free', 'pro');
         create table ledgers (
           id bigint generated always as identity (start with 9007199254740990) primary key,
           owner uuid references users(id) on delete cascade,
           amount numeric, cents numeric(12, 2), rate float8, tier tier, blob bytea, amounts numeric[], doc jsonb,
           note text, at timestamptz(6), span interval, doubled numeric generated always as (amount * 2) stored);
         insert into ledgers (owner, amount, cents, rate, tier, blob, amounts, doc, note, at, span)
         select u.id, 12345678901234567890.0123456789, 10.50, 0.1, 'pro', '\\x00ff', '{2.50,9007199254740993}',
                '{"a": [1, 2.50, 9007199254740993], "b": "x"}', E'quote '' " and\nnewline, é', '2025-11-14 00:21:07.123456+00', '1 day 2 hours'
           from users u;`,
      )
      .execute(ws.t.db);
    expect((await ws.cli(['protect', 'ledgers', '--keep-rows'])).exitCode).toBe(0);
    const asText = async (): Promise<string[]> =>
      (await sql<{ t: string }>`select l::text as t from ledgers l order by id`.execute(ws.t.db)).rows.map((r) => r.t);
    const rows = await asText();
    expect(rows[rows.length - 1]).toContain('9007199254740997,');

    await writeAs(ws.t.url, 'psql', ['DELETE FROM users']);
    const { statements } = await blamed(ws);
    // A seal in between: recover compares the database's kept rows with the sealed copy, number for number.
    expect((await ws.cli(['snapshot'])).exitCode).toBe(0);
    const back = await ws.cli(['recover', ...ids(statements, 'DELETE'), '--with-dependents', '--json']);
    expect(back.exitCode).toBe(0);
    expect(back.stderr).not.toContain('differ from those sealed');
    expect(await asText()).toEqual(rows);
    expect(await rowsOf(ws.t.db)).toEqual(before);
  }, 240_000);

  it('ALTER TABLE DISABLE TRIGGER, DELETE, ENABLE again: blame clears nobody and says the ledger was off, and by whom', async () => {
    // An innocent write in the same window: it must not be taken for the one that emptied the table.
    await writeAs(ws.t.url, 'innocent', ["update users set name = 'Renamed' where email = 'pro.user@example.com'"]);
    const quiet = await writeAs(ws.t.url, 'quiet-admin', [
      'ALTER TABLE users DISABLE TRIGGER safe_run_ledger_delete',
      'DELETE FROM users',
      'ALTER TABLE users ENABLE ALWAYS TRIGGER safe_run_ledger_delete',
    ]);
    const { change, statements } = await blamed(ws);
    expect(statements.map((s) => [s.op, s.applicationName])).toEqual([['UPDATE', 'innocent']]);
    expect(change.ledgerOff).toEqual([
      expect.objectContaining({
        off: expect.objectContaining({ applicationName: 'quiet-admin', pid: quiet.pid, xid: quiet.xid }),
        meanwhile: expect.arrayContaining([
          { table: 'public.credit_allocation', statement: expect.objectContaining({ applicationName: 'quiet-admin', xid: quiet.xid }) },
        ]),
      }),
    ]);
    const text = await ws.cli(['blame', 'users']);
    expect(text.stdout).toContain('the change ledger was OFF on public.users');
    expect(text.stdout).toContain('application "quiet-admin"');
    const report = await ws.cli(['report', 'users']);
    expect(report.stdout).toContain('the change ledger was OFF');
    expect(report.stdout).not.toMatch(/the change ledger names UPDATE/);

    // The cascade's children kept recording: they name the session that emptied users.
    const children = await blamed(ws, 'subscriptions');
    expect(children.statements).toEqual([expect.objectContaining({ op: 'DELETE', applicationName: 'quiet-admin', xid: quiet.xid })]);
  }, 240_000);

  it('pg_restore --data-only --disable-triggers after a TRUNCATE: the TRUNCATE is named, the unrecorded COPY is said', async () => {
    const dump = path.join(ws.cwd, 'data.dump');
    await pgTool('pg_dump', 'test', ['-Fc', '--data-only', '-t', 'users', '-f', dump, ws.t.url]);
    const truncate = await writeAs(ws.t.url, 'psql', ['TRUNCATE users CASCADE']);
    await pgTool('pg_restore', 'data-restore', ['--data-only', '--disable-triggers', '-d', ws.t.url, dump]);
    expect(await countRows(ws.t.db, 'users')).toBe(before.users!.length);

    const { rows: state } = await sql<{ tgenabled: string }>`
      select tgenabled from pg_trigger where tgrelid = 'users'::regclass and tgname like 'safe_run_ledger%'`.execute(ws.t.db);
    // ENABLE TRIGGER ALL turns them back on, but not ALWAYS: doctor says so.
    expect(new Set(state.map((s) => s.tgenabled))).toEqual(new Set(['O']));
    const doctor = await ws.cli(['doctor']);
    expect(doctor.exitCode).toBe(2);

    const result = parseJson<BlameResult>(await ws.cli(['blame', 'users', '--json']));
    const truncated = result.changes.find(
      (c) => c.attribution.type === 'session' && c.attribution.statements.some((s) => s.op === 'TRUNCATE'),
    );
    expect(truncated?.attribution).toMatchObject({
      statements: [expect.objectContaining({ xid: truncate.xid, rows: before.users!.length })],
    });
    expect(truncated?.ledgerOff).toEqual([expect.objectContaining({ off: expect.objectContaining({ applicationName: 'data-restore' }) })]);
  }, 240_000);

  it('the rename swap: users renamed away and an empty users made: blame names the RENAME, check the unprotected new table', async () => {
    const swap = await writeAs(ws.t.url, 'swapper', [
      'ALTER TABLE users RENAME TO users_old',
      'CREATE TABLE users (LIKE users_old INCLUDING ALL)',
    ]);
    const { change, statements } = await blamed(ws);
    expect(change).toMatchObject({ before: before.users!.length, after: 0 });
    expect(statements).toEqual([
      expect.objectContaining({
        op: 'RENAME',
        applicationName: 'swapper',
        xid: swap.xid,
        statement: 'ALTER TABLE users RENAME TO users_old',
      }),
    ]);
    const text = await ws.cli(['blame', 'users']);
    expect(text.stdout).toContain('RENAME by role postgres, application "swapper"');
    expect(text.stdout).toContain('the rows went with the renamed table');
    // Nothing to recover: the rows are in users_old, under the ledger still. The new users is not.
    expect(await rowsOf(ws.t.db, ['users_old'])).toEqual({ users_old: before.users });
    const check = await ws.cli(['check', '--json']);
    expect(check.exitCode).toBe(10);
    expect(parseJson<CheckResult>(check).findings).toContainEqual(
      expect.objectContaining({ kind: 'ledger-trigger-disabled', table: 'public.users' }),
    );
  }, 240_000);

  it('DROP TRIGGER in one session, DELETE in another, protect again: off from the drop until protect, the deleter not cleared', async () => {
    const dropper = await writeAs(ws.t.url, 'cleanup-tool', ['DROP TRIGGER safe_run_ledger_delete ON users']);
    const deleter = await writeAs(ws.t.url, 'seed-script', ['DELETE FROM users']);
    const still = parseJson<BlameResult>(await ws.cli(['blame', 'users', '--json'])).changes.at(-1)!;
    expect(still.attribution.type).toBe('outside');
    // The deleter is not cleared: the cascade into the protected children names it, beside the switch.
    expect(still.ledgerOff).toEqual([
      {
        off: expect.objectContaining({ op: 'LEDGER OFF', applicationName: 'cleanup-tool', xid: dropper.xid }),
        on: null,
        meanwhile: expect.arrayContaining([
          { table: 'public.subscriptions', statement: expect.objectContaining({ applicationName: 'seed-script', xid: deleter.xid }) },
        ]),
      },
    ]);
    const text = (await ws.cli(['blame', 'users'])).stdout;
    expect(text).toContain('on:  not since');
    expect(text).toMatch(
      /meanwhile \(a cascade from here shows there\): DELETE \d+ rows from public.subscriptions at .* application "seed-script"/,
    );

    expect((await ws.cli(['protect', 'users', '--keep-rows'])).exitCode).toBe(0);
    const after = parseJson<BlameResult>(await ws.cli(['blame', 'users', '--json'])).changes.at(-1)!;
    expect(after.ledgerOff).toEqual([
      {
        off: expect.objectContaining({ applicationName: 'cleanup-tool' }),
        on: expect.objectContaining({ op: 'LEDGER ON', applicationName: 'safe-run' }),
        meanwhile: expect.arrayContaining([expect.objectContaining({ table: 'public.subscriptions' })]),
      },
    ]);
    // The children still recorded the cascade: they name the deleter, and their rows come back.
    const children = await blamed(ws, 'subscriptions');
    expect(children.statements).toEqual([expect.objectContaining({ op: 'DELETE', applicationName: 'seed-script' })]);
  }, 240_000);
});
