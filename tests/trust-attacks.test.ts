import { existsSync, mkdtempSync, rmSync, chmodSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { countRows } from './helpers/db.js';
import { logLines } from './helpers/evidence.js';
import { createWorkspace, type Workspace } from './helpers/workspace.js';
import {
  allCounts,
  blame,
  catalogState,
  DELETE_EXAMPLE_USERS,
  DELETE_ONE_SESSION,
  rules,
  runJson,
  send,
  sendQuietly,
  sqlScript,
  tsScript,
  waitFor,
} from './helpers/attacks.js';

/**
 * The trust issue's attacks, each one a script that wants to get past a guard, run through
 * the built CLI on a real PostgreSQL. Every test asserts the exit code, that the database
 * is as before, and the rule that caught it: the assertion that fails if that guard is gone.
 */
const CONFIG = { criticalTables: { users: { maxDropPercent: 10 } } };

describe('attacks on the guard', () => {
  let ws: Workspace;
  beforeEach(async () => {
    ws = await createWorkspace(CONFIG);
  });
  afterEach(async () => {
    await ws.cleanup();
  });

  /** Runs `name` with --json and checks the three things every refused attack must show. */
  async function expectRolledBack(name: string, rule: string, exitCode = 3): Promise<ReturnType<typeof runJson>> {
    const before = { counts: await allCounts(ws), catalog: await catalogState(ws) };
    const json = runJson(await ws.cli([name, '--json']));
    expect({ exit: json.exitCode, status: json.status }).toEqual({ exit: exitCode, status: 'guard-violation' });
    expect(rules(json)).toContain(rule);
    expect({ counts: await allCounts(ws), catalog: await catalogState(ws) }).toEqual(before);
    return json;
  }

  describe('1. statistics views shadowed by temporary views', () => {
    const SHADOW_XACT =
      'create temp view pg_stat_xact_user_tables as select relid, schemaname, relname, 0::bigint as n_tup_ins, ' +
      '0::bigint as n_tup_upd, 0::bigint as n_tup_del, 0::bigint as n_tup_hot_upd from pg_catalog.pg_stat_xact_user_tables';
    const SHADOW_ALL = [
      SHADOW_XACT,
      'create temp view pg_class as select * from pg_catalog.pg_class where false',
      'create temp view pg_stat_user_tables as select * from pg_catalog.pg_stat_user_tables where false',
      'create temp view pg_locks as select * from pg_catalog.pg_locks where false',
      'create temp view pg_namespace as select * from pg_catalog.pg_namespace where false',
      'create temp view pg_sequences as select * from pg_catalog.pg_sequences where false',
      'set local search_path = pg_temp, public',
    ];

    it.each([
      ['pg_stat_xact_user_tables alone', [SHADOW_XACT]],
      ['pg_class, pg_stat_user_tables, pg_locks, pg_namespace and pg_sequences too', SHADOW_ALL],
    ])('measures the real deletes under %s (TypeScript)', async (_what, shadows) => {
      ws.writeScript('shadow.ts', tsScript('shadow', [...shadows, DELETE_EXAMPLE_USERS].map(send).join('\n')));
      const json = await expectRolledBack('shadow', 'undeclared-table');
      expect(json.changes['public.users']?.deleted).toBe(3);
      expect(json.changes['public.credit_allocation']?.deleted).toBeGreaterThan(0);
      // Rolled back, so nothing happened to users: blame must show no change at all.
      expect((await blame(ws, 'users')).filter((c) => c.before !== c.after)).toEqual([]);
    });

    it('measures the real deletes under the same shadows in a .sql script', async () => {
      ws.writeScript('shadow.sql', sqlScript([...SHADOW_ALL, DELETE_EXAMPLE_USERS].map((s) => `${s};`).join('\n')));
      const json = await expectRolledBack('shadow', 'undeclared-table');
      expect(json.changes['public.users']?.deleted).toBe(3);
    });
  });

  describe('2. COMMIT hidden from a naive splitter (.sql)', () => {
    it.each([
      ['after $$ inside a -- comment', '-- costs $$5\nselect 1;\nCOMMIT; delete from users;\n-- $$\n'],
      ["after E'\\''", "select E'\\'';\nCOMMIT; delete from users;\nselect '';\n"],
    ])('refuses the script %s before anything runs (exit 2)', async (_how, body) => {
      const before = await allCounts(ws);
      ws.writeScript('hidden.sql', sqlScript(body, '-- @touches users: delete'));
      const result = await ws.cli(['hidden', '--json']);
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toContain('COMMIT');
      expect(await allCounts(ws)).toEqual(before);
      // Refused at load: not even an intent was written.
      expect(existsSync(path.join(ws.evidenceDir, 'audit.jsonl')) ? logLines(ws.evidenceDir) : []).toEqual([]);
    });
  });

  describe('3. undeclared DDL', () => {
    const TRIGGER_FN = 'create function public.evil_fn() returns trigger language plpgsql as $$ begin return null; end $$';
    const DDL: readonly [string, readonly string[], string][] = [
      [
        'CREATE TRIGGER',
        [TRIGGER_FN, 'create trigger evil_trigger before delete on users for each row execute function public.evil_fn()'],
        'evil_trigger',
      ],
      ['CREATE FUNCTION', ['create function public.evil_fn() returns int language sql as $$ select 1 $$'], 'evil_fn'],
      ['ALTER TABLE users DISABLE TRIGGER ALL', ['alter table users disable trigger all'], 'users'],
      ['GRANT ALL ON users TO PUBLIC', ['grant all on users to public'], 'users'],
      ['CREATE VIEW', ['create view public.evil_view as select 1 as one'], 'evil_view'],
      ['COMMENT ON TABLE users', ["comment on table users is 'nothing to see here'"], 'users'],
      ['CREATE POLICY', ['create policy evil_policy on users using (true)'], 'evil_policy'],
    ];
    const cases = DDL.flatMap(([label, statements, token]) => [
      ['ts', label, statements, token] as const,
      ['sql', label, statements, token] as const,
    ]);

    it.each(cases)('rolls back %s: %s, naming the object', async (kind, _label, statements, token) => {
      if (kind === 'ts') ws.writeScript('ddl.ts', tsScript('ddl', statements.map(send).join('\n')));
      else ws.writeScript('ddl.sql', sqlScript(statements.map((s) => `${s};`).join('\n')));
      const json = await expectRolledBack('ddl', 'undeclared-ddl');
      const ddl = json.violations.filter((v) => v.rule === 'undeclared-ddl');
      expect(JSON.stringify(ddl)).toContain(token);
    });

    it.each([
      ['ts', () => tsScript('viewer', send('create view public.evil_view as select 1 as one'), 'touches: {}, ddl: true,')],
      ['sql', () => sqlScript('create view public.evil_view as select 1 as one;', '-- @ddl')],
    ])('commits a CREATE VIEW that a %s script declares', async (kind, source) => {
      ws.writeScript(`viewer.${kind}`, source());
      const json = runJson(await ws.cli(['viewer', '--json']));
      expect({ exit: json.exitCode, violations: json.violations }).toEqual({ exit: 0, violations: [] });
      expect((await catalogState(ws)).views).toBe('evil_view');
    });
  });

  describe('4. guarded settings', () => {
    const REFUSED: readonly [string, string][] = [
      ['SET LOCAL session_replication_role', 'set local session_replication_role = replica'],
      ['SET LOCAL statement_timeout', 'set local statement_timeout = 0'],
      ['set_config(session_replication_role)', "select set_config('session_replication_role', 'replica', true)"],
      ['RESET ALL', 'reset all'],
      ['SET ROLE', 'set role postgres'],
    ];

    it.each(REFUSED)('refuses %s in a TypeScript script that catches the refusal and deletes', async (_label, statement) => {
      ws.writeScript(
        'setter.ts',
        tsScript('setter', `${sendQuietly(statement)} ${send(DELETE_EXAMPLE_USERS)}`, "touches: { users: ['delete'] },"),
      );
      const json = await expectRolledBack('setter', 'refused-statement');
      expect(json.violations.find((v) => v.rule === 'refused-statement')?.object).toBe(statement);
    });

    it.each(REFUSED)('refuses %s in a .sql script before it runs (exit 2)', async (_label, statement) => {
      const before = await allCounts(ws);
      ws.writeScript('setter.sql', sqlScript(`${statement};\n${DELETE_EXAMPLE_USERS};`, '-- @touches users: delete'));
      const result = await ws.cli(['setter', '--json']);
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toContain('is refused');
      expect(await allCounts(ws)).toEqual(before);
    });

    it('refuses SQL computed at run time under a superuser (unchecked-dynamic)', async () => {
      const doBlock = "do $$ begin execute 'set local session_' || 'replication_role = replica'; end $$";
      ws.writeScript('computed.ts', tsScript('computed', `${send(doBlock)} ${send(DELETE_ONE_SESSION)}`));
      const json = await expectRolledBack('computed', 'refused-statement');
      expect(json.violations[0]?.detail).toContain('EXECUTE of a computed string');
    });

    it('catches a setting changed by a function the policy cannot read, and left set (setting-changed)', async () => {
      // Created beforehand, so the script's statement is only a call.
      await sql`create function public.flip_replication() returns text language sql as $$ select set_config('session_replication_role', 'replica', true) $$`.execute(
        ws.t.db,
      );
      ws.writeScript('computed.ts', tsScript('computed', `${send('select public.flip_replication()')} ${send(DELETE_ONE_SESSION)}`));
      const json = await expectRolledBack('computed', 'setting-changed');
      expect(json.violations.find((v) => v.rule === 'setting-changed')?.object).toBe('session_replication_role');
    });
  });

  describe('5. work outside the transaction', () => {
    let markerDir: string;
    beforeEach(() => {
      markerDir = mkdtempSync(path.join(os.tmpdir(), 'safe-run-attack-'));
      chmodSync(markerDir, 0o777);
    });
    afterEach(() => rmSync(markerDir, { recursive: true, force: true }));

    const statements = (marker: string): readonly [string, string][] => [
      ['COPY ... TO PROGRAM', `copy (select 1) to program 'touch ${marker}; psql -c "delete from users"'`],
      ['dblink_exec', "select dblink_exec('dbname=postgres', 'delete from users')"],
    ];

    it.each([0, 1])('refuses statement %i in a TypeScript script', async (i) => {
      const marker = path.join(markerDir, 'ran');
      const [, statement] = statements(marker)[i]!;
      ws.writeScript('outside.ts', tsScript('outside', `${sendQuietly(statement)} ${send(DELETE_ONE_SESSION)}`));
      await expectRolledBack('outside', 'refused-statement');
      expect(existsSync(marker)).toBe(false);
    });

    it.each([0, 1])('refuses statement %i in a .sql script (exit 2)', async (i) => {
      const marker = path.join(markerDir, 'ran');
      const [, statement] = statements(marker)[i]!;
      const before = await allCounts(ws);
      ws.writeScript('outside.sql', sqlScript(`${statement};`));
      expect((await ws.cli(['outside', '--json'])).exitCode).toBe(2);
      expect(await allCounts(ws)).toEqual(before);
      expect(existsSync(marker)).toBe(false);
    });
  });

  describe('6. the evidence schema', () => {
    // Named, the policy refuses it; computed (a superuser's dynamic EXECUTE is refused too, so as
    // a role-less test the computed form goes through a SQL function created beforehand), the
    // guard finds the write. Either way the anchor write never waits on the script's lock.
    it.each([
      ['update', 'update safe_run.chain_head set seq = seq - 1', 'refused-statement'],
      ['delete', 'delete from safe_run.chain_head', 'refused-statement'],
      ['truncate', 'truncate safe_run.chain_head', 'refused-statement'],
      ['lock', 'lock table safe_run.chain_head in access exclusive mode', 'refused-statement'],
      ['update through a function', 'select public.rewind_anchor()', 'evidence-schema'],
    ])(
      'rolls back a script that writes to safe_run.chain_head (%s)',
      async (_what, statement, rule) => {
        expect((await ws.cli(['snapshot'])).exitCode).toBe(0);
        await sql`create function public.rewind_anchor() returns void language sql as 'update safe_run.chain_head set seq = seq - 1'`.execute(
          ws.t.db,
        );
        ws.writeScript('anchor-writer.ts', tsScript('anchor-writer', send(statement)));
        await expectRolledBack('anchor-writer', rule);
        // The anchor moved only with the run's own entries (it may lag while the script held its
        // lock: the runner does not wait on a script), and it is never ahead of the log.
        const anchor = await sql<{ seq: number; hash: string }>`select seq::int as seq, hash from safe_run.chain_head`.execute(ws.t.db);
        const lines = logLines(ws.evidenceDir).map((l) => JSON.parse(l) as { seq: number; hash: string });
        expect(anchor.rows).toHaveLength(1);
        expect(lines).toContainEqual(expect.objectContaining({ seq: anchor.rows[0]!.seq, hash: anchor.rows[0]!.hash }));
        expect((await ws.cli(['verify', '--json'])).exitCode).toBe(0);
      },
      20_000,
    );
  });

  describe('7. critical updates', () => {
    beforeEach(() => ws.writeConfig({ criticalTables: { users: { maxDropPercent: 10, maxUpdatePercent: 50 } } }));

    it('rolls back an update of every email in users, though users is declared', async () => {
      ws.writeScript('emails.ts', tsScript('emails', send("update users set email = 'gone-' || email"), "touches: { users: ['update'] },"));
      const emails = await sql`select id, email from users order by id`.execute(ws.t.db);
      const json = await expectRolledBack('emails', 'critical-update');
      expect(json.changes['public.users']?.updated).toBe(8);
      expect((await sql`select id, email from users order by id`.execute(ws.t.db)).rows).toEqual(emails.rows);
    });

    it('commits an update of one row', async () => {
      ws.writeScript(
        'email.ts',
        tsScript(
          'email',
          send("update users set email = 'new@example.org' where email = 'ops.user@rephlo.ai'"),
          "touches: { users: ['update'] },",
        ),
      );
      const json = runJson(await ws.cli(['email', '--json']));
      expect({ exit: json.exitCode, violations: json.violations }).toEqual({ exit: 0, violations: [] });
      expect(
        (await sql<{ n: number }>`select count(*)::int as n from users where email = 'new@example.org'`.execute(ws.t.db)).rows[0]!.n,
      ).toBe(1);
    });
  });

  describe('12. a sequence set back, which no rollback undoes', () => {
    const position = async (): Promise<string> =>
      (await sql<{ v: string }>`select last_value::text as v from pg_sequences where sequencename = 'invoice_no'`.execute(ws.t.db)).rows[0]!
        .v;
    beforeEach(async () => {
      await sql`create sequence invoice_no start 1000`.execute(ws.t.db);
      await sql`select nextval('invoice_no') from generate_series(1, 5)`.execute(ws.t.db);
    });

    it.each([
      ['setval', "select setval('invoice_no', 1);", '1'],
      ['setval(..., false)', "select setval('invoice_no', 1, false);", null],
    ])('%s below its position stops the run, and the detail puts it back', async (_how, statement, left) => {
      ws.writeScript('renumber.sql', sqlScript(`${DELETE_ONE_SESSION};\n${statement}`));
      const json = await expectRolledBack('renumber', 'sequence-reset');
      const reset = json.violations.find((v) => v.rule === 'sequence-reset')!;
      expect(reset).toMatchObject({ object: 'public.invoice_no', detail: expect.stringContaining('went back from 1004') });
      // Not undone by the rollback: the sequence is where the script left it until the operator puts it back.
      expect(
        (await sql<{ v: string | null }>`select last_value::text as v from pg_sequences where sequencename = 'invoice_no'`.execute(ws.t.db))
          .rows[0]!.v,
      ).toBe(left);
      await sql.raw(/SELECT pg_catalog\.setval\(.*\);/.exec(reset.detail)![0]).execute(ws.t.db);
      expect(await position()).toBe('1004');
    });

    it('a declared TRUNCATE ... RESTART IDENTITY is no reset: that restart rolls back with the run, setval does not', async () => {
      await sql`create table tickets (id serial primary key, note text); insert into tickets (note) values ('a'), ('b'), ('c')`.execute(
        ws.t.db,
      );
      ws.writeScript('reset-tickets.sql', sqlScript('truncate tickets restart identity;', '-- @touches tickets: truncate'));
      // A dry run: the restart happens inside the transaction and is undone with it. (Only the
      // sequence rule is asserted: a role another test file creates meanwhile is a catalog change too.)
      const json = runJson(await ws.cli(['reset-tickets', '--dry-run', '--json']));
      expect(json.changes['public.tickets']).toMatchObject({ truncated: true });
      expect(rules(json)).not.toContain('sequence-reset');
      const { rows } = await sql<{
        v: string | null;
      }>`select last_value::text as v from pg_sequences where sequencename = 'tickets_id_seq'`.execute(ws.t.db);
      expect(rows[0]!.v).toBe('3');
    });

    it('a sequence moved forward (re-synced after an import) commits', async () => {
      ws.writeScript('resync.sql', sqlScript(`${DELETE_ONE_SESSION};\nselect setval('invoice_no', 5000);`));
      const json = runJson(await ws.cli(['resync', '--json']));
      expect({ exit: json.exitCode, violations: json.violations }).toEqual({ exit: 0, violations: [] });
      expect(await position()).toBe('5000');
    });
  });

  describe('13. a second session through a foreign table', () => {
    // postgres_fdw pointing back at this very database: the delete runs on the wrapper's own connection.
    beforeEach(async () => {
      const { rows } = await sql<{ port: string; db: string }>`select current_setting('port') as port, current_database() as db`.execute(
        ws.t.db,
      );
      await sql
        .raw(
          `create extension if not exists postgres_fdw;
           create server loopback foreign data wrapper postgres_fdw options (host '127.0.0.1', port '${rows[0]!.port}', dbname '${rows[0]!.db}');
           create user mapping for current_user server loopback options (user '${new URL(ws.t.url).username}');
           create foreign table public.users_elsewhere (id uuid, email text) server loopback options (schema_name 'public', table_name 'users');
           create table public.notes (id int); insert into public.notes select generate_series(1, 3);
           create foreign table public.notes_elsewhere (id int) server loopback options (schema_name 'public', table_name 'notes');`,
        )
        .execute(ws.t.db);
    });

    it.each([
      ['a DELETE', "delete from users_elsewhere where email like '%example.com'", 'users_elsewhere'],
      ['a TRUNCATE', 'truncate notes_elsewhere', 'notes_elsewhere'],
    ])('%s through it is refused, and the other connection rolls back with the run', async (_how, statement, table) => {
      ws.writeScript('elsewhere.sql', sqlScript(`${DELETE_ONE_SESSION};\n${statement};`));
      const json = await expectRolledBack('elsewhere', 'foreign-write');
      expect(json.violations.find((v) => v.rule === 'foreign-write')).toMatchObject({ object: `public.${table}` });
      expect([await countRows(ws.t.db, 'users'), await countRows(ws.t.db, 'notes')]).toEqual([8, 3]);
    });
  });

  describe('8. ending the transaction from inside', () => {
    it('a procedure that commits cannot commit inside the run: not committed, users unchanged', async () => {
      // Made beforehand by someone else, so the policy never sees its body.
      await sql`create procedure public.committer() language plpgsql as $$ begin commit; end $$`.execute(ws.t.db);
      ws.writeScript('escape.ts', tsScript('escape', `${send(DELETE_EXAMPLE_USERS)} try { ${send('call public.committer()')} } catch {}`));
      const before = await allCounts(ws);
      const json = runJson(await ws.cli(['escape', '--json']));
      expect(json.exitCode).not.toBe(0);
      if (json.status === 'escaped') expect(json.changes['public.users']?.deleted).toBe(3);
      else expect(['guard-violation', 'failed']).toContain(json.status);
      expect(await allCounts(ws)).toEqual(before);
    });

    it('EXECUTE of a computed COMMIT in a DO block does not end the transaction', async () => {
      ws.writeScript(
        'escape.ts',
        tsScript('escape', `${send(DELETE_EXAMPLE_USERS)} try { ${send("do $$ begin execute 'com' || 'mit'; end $$")} } catch {}`),
      );
      const before = await allCounts(ws);
      const json = runJson(await ws.cli(['escape', '--json']));
      expect(json.exitCode).not.toBe(0);
      expect(json.status).not.toBe('committed');
      expect(await allCounts(ws)).toEqual(before);
    });
  });

  describe('9. counting switched off', () => {
    it.each([
      // In a DO block the policy refuses the computed switch; in a function created beforehand it
      // cannot see it, and the count check does.
      [
        'a DO block',
        "DO $$ BEGIN EXECUTE 'SET LOCAL track_' || 'counts = off'; DELETE FROM users WHERE email LIKE '%example.com'; EXECUTE 'SET LOCAL track_counts = on'; END $$",
        'refused-statement',
      ],
      ['a function', 'select public.blind_delete()', 'unexplained-change'],
    ])('does not commit a delete done with track_counts off by a superuser script (through %s)', async (_how, statement, rule) => {
      await sql`create function public.blind_delete() returns void language plpgsql as $$ begin
        perform set_config('track_counts', 'off', true); delete from users where email like '%example.com';
        perform set_config('track_counts', 'on', true); end $$`.execute(ws.t.db);
      ws.writeScript('blind.ts', tsScript('blind', send(statement)));
      const before = await allCounts(ws);
      const json = runJson(await ws.cli(['blind', '--json']));
      expect(json.exitCode).toBe(3);
      expect(json.trust).toBe('superuser');
      expect(rules(json)).toContain(rule);
      expect(await allCounts(ws)).toEqual(before);
    });

    // The catalog write counters stay at zero, so "the script wrote no catalog row" is no proof under a superuser.
    it.each([
      ['disables a trigger', 'alter table users disable trigger user_watch', 'trigger user_watch on public.users', ''],
      ['drops a trigger', 'drop trigger user_watch on users', 'trigger user_watch on public.users', ''],
      ['creates a role', 'create role blind_made_role', 'role blind_made_role', ''],
      // GRANT gives its catalog lock back and locks no table: only the pg_class row it rewrote, carrying the transaction's xid, says it.
      ['grants on a table', 'grant all on users to public', 'table public.users', ''],
      // The scan is prepared on the script's own session before it runs: one that puts an empty one in its place is not believed.
      [
        "grants on a table, after replacing the guard's prepared scan with an empty one",
        "perform set_config('blind.scan', (select name from pg_prepared_statements where name like 'safe_run%'), true); " +
          "execute format('deallocate %I', current_setting('blind.scan')); " +
          "execute format('prepare %I as select 0 as i, 0::int8 as own where false', current_setting('blind.scan')); " +
          'grant all on users to public',
        'table public.users',
        '',
      ],
      // REVOKE takes no object lock and leaves no row: its write lock on pg_auth_members stays.
      // So does a superuser's DELETE straight from a catalog.
      [
        'deletes a trigger row from pg_trigger',
        "delete from pg_catalog.pg_trigger where tgname = 'user_watch'",
        'trigger user_watch on public.users',
        '',
      ],
      [
        'revokes a role membership',
        'revoke blind_granted from blind_member',
        'role membership blind_member in blind_granted',
        // Only this case makes roles: they are cluster-wide, and the test files beside this one read the catalogs.
        'create role blind_granted; create role blind_member in role blind_granted',
      ],
    ] as const)('does not commit DDL a pre-existing function does with track_counts off (it %s)', async (_what, ddl, named, roles) => {
      await sql`create trigger user_watch after delete on users for each statement execute function pg_catalog.suppress_redundant_updates_trigger()`.execute(
        ws.t.db,
      );
      if (roles) await sql.raw(roles).execute(ws.t.db);
      await sql`create function public.blind_ddl() returns void language plpgsql set track_counts = off
                as ${sql.lit(`begin ${ddl}; end`)}`.execute(ws.t.db);
      ws.writeScript('blind.sql', sqlScript('select public.blind_ddl();'));
      try {
        const json = runJson(await ws.cli(['blind', '--json']));
        expect({ exit: json.exitCode, status: json.status, trust: json.trust }).toEqual({
          exit: 3,
          status: 'guard-violation',
          trust: 'superuser',
        });
        expect(json.violations).toEqual(
          expect.arrayContaining([expect.objectContaining({ rule: 'undeclared-ddl', object: expect.stringContaining(named) })]),
        );
        const { rows } = await sql<{ made: number; members: number }>`
          select (select count(*)::int from pg_roles where rolname = 'blind_made_role') as made,
                 (select count(*)::int from pg_auth_members m join pg_roles r on r.oid = m.roleid
                   where r.rolname = 'blind_granted') as members`.execute(ws.t.db);
        expect(rows[0]).toEqual({ made: 0, members: roles ? 1 : 0 });
      } finally {
        // blind_made_role exists only if the attack got through.
        await sql`drop role if exists blind_made_role`.execute(ws.t.db);
        if (roles) await sql`drop role blind_member, blind_granted`.execute(ws.t.db);
      }
    });
  });
});

describe('attacks that leave the transaction through the server (superuser script)', () => {
  let ws: Workspace;
  beforeEach(async () => {
    ws = await createWorkspace(CONFIG);
  });
  afterEach(async () => {
    await ws.cleanup();
  });

  /** A shell command the server runs: psql back into this database, on its own connection. */
  const psqlDelete = (): string =>
    "format('psql -h 127.0.0.1 -p %s -U postgres -d %s -c \"%s\"', current_setting('port'), current_database(), " +
    "'delete from users where email like ''%example.com''')";

  // A computed EXECUTE could run psql as the server's OS user, on its own connection, where no
  // check after the script can see it: a superuser script may not EXECUTE computed SQL at all.
  it('COPY ... TO PROGRAM computed in a DO block: the run is not cleared while users changed', async () => {
    const doBlock = `do $$ begin execute format('copy (select 1) to pro' || 'gram %L', ${psqlDelete()}); end $$`;
    ws.writeScript('program.ts', tsScript('program', `${send(doBlock)} ${send(DELETE_ONE_SESSION)}`));
    const json = runJson(await ws.cli(['program', '--json']));
    expect(await countRows(ws.t.db, 'users')).toBe(8);
    expect(json.exitCode).toBe(3);
  });

  // The same for dblink reached through computed SQL: refused before it runs under a superuser.
  it('dblink computed in a DO block: the run is not cleared while users changed', async () => {
    await sql`create extension if not exists dblink`.execute(ws.t.db);
    const doBlock =
      "do $$ begin execute 'select dbl' || 'ink_exec(' || quote_literal(format('host=127.0.0.1 port=%s user=postgres dbname=%s', " +
      "current_setting('port'), current_database())) || ', ' || quote_literal('delete from users where email like ''%example.com''') || ')'; end $$";
    ws.writeScript('link.ts', tsScript('link', `${send(doBlock)} ${send(DELETE_ONE_SESSION)}`));
    const json = runJson(await ws.cli(['link', '--json']));
    expect(await countRows(ws.t.db, 'users')).toBe(8);
    expect(json.exitCode).toBe(3);
  });
});

describe('10. scriptRole', () => {
  let ws: Workspace;
  let role: string;
  beforeEach(async () => {
    ws = await createWorkspace(CONFIG);
    role = `maint_${randomBytes(4).toString('hex')}`;
    await sql`create role ${sql.id(role)} login`.execute(ws.t.db);
    await sql`grant usage on schema public to ${sql.id(role)}`.execute(ws.t.db);
    await sql`grant select, delete on oidc_models to ${sql.id(role)}`.execute(ws.t.db);
    await sql`grant select on users to ${sql.id(role)}`.execute(ws.t.db);
  });
  afterEach(async () => {
    await sql`drop owned by ${sql.id(role)}`.execute(ws.t.db);
    await sql`drop role ${sql.id(role)}`.execute(ws.t.db);
    await ws.cleanup();
  });

  it('runs the cleanup under the role with trust "role", and as superuser without it', async () => {
    const superuser = runJson(await ws.cli(['cleanup-invalid-sessions', '--json', '--dry-run']));
    expect({ exit: superuser.exitCode, trust: superuser.trust }).toEqual({ exit: 0, trust: 'superuser' });
    ws.writeConfig({ ...CONFIG, scriptRole: role });
    const json = runJson(await ws.cli(['cleanup-invalid-sessions', '--json']));
    expect({ exit: json.exitCode, status: json.status, trust: json.trust }).toEqual({ exit: 0, status: 'committed', trust: 'role' });
    expect(json.changes['public.oidc_models']?.deleted).toBeGreaterThan(0);
  });

  it("counts an exactTables table the role may not read on the runner's connection, and still commits", async () => {
    ws.writeConfig({ ...CONFIG, scriptRole: role, exactTables: ['models'] });
    const json = runJson(await ws.cli(['cleanup-invalid-sessions', '--json']));
    expect({ exit: json.exitCode, status: json.status }).toEqual({ exit: 0, status: 'committed' });
    // Not counted inside the script's transaction (the role has no SELECT on it) ...
    expect(json.counts.inTransaction['public.models']).toBeUndefined();
    expect(json.counts.inTransaction['public.users']).toBe(8);
    // ... but exact in both snapshots all the same.
    const snapshots = logLines(ws.evidenceDir)
      .map((l) => JSON.parse(l) as { kind: string; body: { snapshot?: { tables: Record<string, { rows: number; rowsKind: string }> } } })
      .filter((e) => e.kind === 'run.intent' || e.kind === 'run.post');
    expect(snapshots.map((e) => e.body.snapshot!.tables['public.models']!.rowsKind)).toEqual(['exact', 'exact']);
    expect(snapshots[1]!.body.snapshot!.tables['public.models']!.rows).toBe(await countRows(ws.t.db, 'models'));
  });

  it('takes the role from --script-role too, and shows the trust in show', async () => {
    const json = runJson(await ws.cli(['cleanup-invalid-sessions', '--json', '--script-role', role]));
    expect({ exit: json.exitCode, trust: json.trust }).toEqual({ exit: 0, trust: 'role' });
    expect((await ws.cli(['show', json.runId])).stdout).toContain('trust: role');
  });

  it('refuses COPY ... TO PROGRAM, and the server refuses the computed form too', async () => {
    ws.writeConfig({ ...CONFIG, scriptRole: role });
    ws.writeScript('program.ts', tsScript('program', `${sendQuietly("copy (select 1) to program 'true'")} ${send(DELETE_ONE_SESSION)}`));
    const before = await allCounts(ws);
    const refused = runJson(await ws.cli(['program', '--json']));
    expect({ exit: refused.exitCode, trust: refused.trust }).toEqual({ exit: 3, trust: 'role' });
    expect(rules(refused)).toContain('refused-statement');

    const doBlock = "do $$ begin execute 'copy (select 1) to pro' || 'gram ''true'''; end $$";
    ws.writeScript('program.ts', tsScript('program', `${send(DELETE_ONE_SESSION)} ${send(doBlock)}`));
    const failed = runJson(await ws.cli(['program', '--json']));
    expect(failed.exitCode).toBe(1);
    expect(failed.error?.code).toBe('42501');
    expect(await allCounts(ws)).toEqual(before);
  });
});

describe('11. concurrent writes', () => {
  let ws: Workspace;
  beforeEach(async () => {
    ws = await createWorkspace(CONFIG);
  });
  afterEach(async () => {
    await ws.cleanup();
  });

  it("commits the run and blames another session's deletes during it on that session, naming the run", async () => {
    ws.writeScript('slow.ts', tsScript('slow', `${send(DELETE_ONE_SESSION)} ${send('select pg_sleep(3)')}`));
    const running = ws.cli(['slow', '--json']);
    await waitFor(async () => {
      const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_catalog.pg_stat_activity
        where datname = current_database() and query like '%pg_sleep(3)%' and pid <> pg_catalog.pg_backend_pid()`.execute(ws.t.db);
      return rows[0]!.n > 0;
    });
    await sql`delete from users where id in ('00000000-0000-4000-8000-000000000007', '00000000-0000-4000-8000-000000000008')`.execute(
      ws.t.db,
    );
    const json = runJson(await running);
    expect({ exit: json.exitCode, status: json.status, violations: json.violations }).toEqual({
      exit: 0,
      status: 'committed',
      violations: [],
    });
    expect(json.changes['public.users']).toBeUndefined();
    const users = (await blame(ws, 'users')).filter((c) => c.before !== c.after);
    expect(users).toEqual([
      expect.objectContaining({ before: 8, after: 6, attribution: expect.objectContaining({ type: 'concurrent', runId: json.runId }) }),
    ]);
  });
});
