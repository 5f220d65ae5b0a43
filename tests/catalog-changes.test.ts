import { randomBytes } from 'node:crypto';
import { sql, type KyselyPlugin, type RawBuilder } from 'kysely';
import { createDb, type Db } from '../src/db/connection.js';
import { CATALOG_STATE_STATEMENTS, readCatalogState, readCatalogStateAt, type CatalogState } from '../src/guard/catalog-changes.js';
import type { CatalogChange } from '../src/guard/catalog-diff.js';
import { judgeCatalogChanges, readCatalogSnapshot, type CatalogJudgement } from '../src/guard/catalog-verdict.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';

/**
 * Each case: a transaction opened by the test, a catalog snapshot, the statements a script
 * would run, a second snapshot, the verdict, and a rollback, so every case starts from the
 * same seeded database.
 */
async function observe(
  db: Db,
  act: RawBuilder<unknown> | ((trx: Db) => Promise<void>),
  arrange?: RawBuilder<unknown>,
): Promise<CatalogJudgement> {
  return db.connection().execute(async (conn) => {
    // Repeatable read: roles are cluster-wide, and the test files running beside this one create and drop some.
    await sql`begin isolation level repeatable read`.execute(conn);
    try {
      if (arrange) await arrange.execute(conn);
      const before = await readCatalogSnapshot(conn);
      if (typeof act === 'function') await act(conn);
      else await act.execute(conn);
      // Filtered as the runner's own-change test does, before the verdict: a role another file
      // created meanwhile must not stand in for the unidentified writes of this case.
      return judgeCatalogChanges(before, await readCatalogSnapshot(conn), (c) => !anotherFilesRole(c));
    } finally {
      await sql`rollback`.execute(conn);
    }
  });
}

/**
 * Even in repeatable read, pg_identify_object names a role from the current catalogs, not the
 * snapshot: a role that a test file running beside this one drops meanwhile reads as renamed,
 * one it creates as created. This file's own roles are owner_* and reader_*.
 */
const anotherFilesRole = (c: CatalogChange): boolean =>
  (c.objectType === 'role' || c.objectType === 'role membership') && !/\b(owner|reader)_[0-9a-f]{6}\b/.test(c.identity);

/**
 * Roles, databases and tablespaces are the whole cluster's, and the test files running beside
 * this one create and drop theirs between any two reads: of those, only the ones initdb made
 * (oids below 16384) and this file's own are the same in every read.
 */
const CLUSTER_CATALOGS = new Set(['pg_authid', 'pg_auth_members', 'pg_database', 'pg_db_role_setting', 'pg_tablespace']);
const stableObjects = (state: CatalogState, database: string): string[] =>
  [...state.objects.values()]
    .filter(
      (o) =>
        !CLUSTER_CATALOGS.has(o.catalog) ||
        o.key
          .split('/')
          .slice(1)
          .every((oid) => Number(oid) < 16384) ||
        /\b(owner|reader)_[0-9a-f]{6}\b/.test(o.identity) ||
        o.identity === database,
    )
    .map((o) => `${o.key} ${o.hash}`)
    .sort();

const summary = (changes: readonly CatalogChange[]): string[] =>
  changes.map((c) => `${c.action} ${c.objectType} ${c.identity}${c.table ? ` [${c.table}]` : ''}`);

describe('catalog changes inside the script transaction', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase('catchg');
  });
  afterAll(async () => {
    await t.drop();
  });

  it('names the foreign-key triggers that DISABLE TRIGGER ALL turns off', async () => {
    const { changes } = await observe(t.db, sql`alter table users disable trigger all`);
    expect(changes.length).toBeGreaterThanOrEqual(2);
    for (const c of changes) {
      expect(c).toEqual(expect.objectContaining({ action: 'altered', objectType: 'trigger', catalog: 'pg_trigger' }));
      expect(c.detail).toMatch(/trigger disabled \(foreign key \w+ on public\.\w+\), was enabled/);
    }
    expect(changes.map((c) => c.table)).toContain('public.users');
    expect(changes.some((c) => c.detail.includes('credit_allocation_user_id_fkey'))).toBe(true);
  });

  it.each([
    ['GRANT ALL ... TO PUBLIC', sql`grant all on users to public`, 'altered table public.users [public.users]', /granted PUBLIC=arwdDxt\//],
    [
      'a column privilege',
      sql`grant select (email) on users to public`,
      'altered table column public.users.email [public.users]',
      /granted PUBLIC=r\//,
    ],
    [
      'CREATE FUNCTION',
      sql`create function public.f() returns int security definer language sql as 'select 1'`,
      'created function public.f()',
      /SECURITY DEFINER/,
    ],
    [
      'CREATE TRIGGER',
      sql`create trigger users_audit before update on users for each row execute function pg_catalog.suppress_redundant_updates_trigger()`,
      'created trigger users_audit on public.users [public.users]',
      /created/,
    ],
    ['CREATE VIEW', sql`create view public.active as select id from users where is_active`, 'created view public.active', /created/],
    ['ALTER ROLE ... SET', sql`alter role current_user set work_mem = '8MB'`, 'created settings for role postgres', /created/],
    ['COMMENT ON', sql`comment on table users is 'people'`, 'created comment on table public.users', /"people"/],
    ['CREATE POLICY', sql`create policy own on users using (is_active)`, 'created policy own on public.users [public.users]', /created/],
    [
      'ENABLE ROW LEVEL SECURITY',
      sql`alter table users enable row level security`,
      'altered table public.users [public.users]',
      /row level security enabled/,
    ],
    [
      'CREATE RULE',
      sql`create rule keep as on delete to users do instead nothing`,
      'created rule keep on public.users [public.users]',
      /created/,
    ],
    ['CREATE INDEX', sql`create index users_email on users (email)`, 'created index public.users_email [public.users]', /created/],
    ['ADD COLUMN', sql`alter table users add column note text`, 'created table column public.users.note [public.users]', /created/],
    [
      'DROP CONSTRAINT',
      sql`alter table credit_allocation drop constraint credit_allocation_user_id_fkey`,
      'dropped table constraint credit_allocation_user_id_fkey on public.credit_allocation [public.credit_allocation]',
      /dropped/,
    ],
    ['CREATE SCHEMA', sql`create schema audit`, 'created schema audit', /created/],
    ['GRANT CREATE ON SCHEMA public', sql`grant create on schema public to public`, 'altered schema public', /granted PUBLIC=C\//],
    ['CREATE TYPE (enum)', sql`create type mood as enum ('ok', 'sad')`, 'created type public.mood', /created/],
    [
      'ALTER TYPE ADD VALUE',
      sql`create type public.m2 as enum ('a'); alter type public.m2 add value 'b'`,
      'created type public.m2',
      /created/,
    ],
    [
      'CREATE DOMAIN',
      sql`create domain public.email as text check (value like '%@%')`,
      'created domain constraint email_check on public.email',
      /created/,
    ],
    ['CREATE SEQUENCE', sql`create sequence public.s`, 'created sequence public.s', /created/],
    [
      'CREATE MATERIALIZED VIEW',
      sql`create materialized view public.mv as select 1 as x`,
      'created materialized view public.mv',
      /created/,
    ],
    [
      'ALTER DEFAULT PRIVILEGES',
      sql`alter default privileges grant select on tables to public`,
      'created default acl for role postgres on tables',
      /created/,
    ],
    [
      'CREATE EVENT TRIGGER',
      sql`create function public.ev() returns event_trigger language plpgsql as 'begin end'; create event trigger ev on ddl_command_end execute function public.ev()`,
      'created event trigger ev',
      /created/,
    ],
    ['CREATE EXTENSION', sql`create extension citext`, 'created extension citext', /created/],
    ['CREATE PUBLICATION', sql`create publication everything for all tables`, 'created publication everything', /created/],
    ['a large object', sql`select pg_catalog.lo_create(424242)`, 'created large object 424242', /created/],
  ] as const)('finds %s', async (_name, act, expected, detail) => {
    const { changes } = await observe(t.db, act);
    expect(summary(changes)).toContain(expected);
    expect(changes.find((c) => summary([c])[0] === expected)!.detail).toMatch(detail!);
  });

  it('finds per-database settings and privileges on the database', async () => {
    const db = sql.id(t.name);
    const { changes } = await observe(t.db, sql`alter database ${db} set work_mem = '8MB'; grant create on database ${db} to public`);
    expect(summary(changes)).toEqual([`altered database ${t.name}`, `created settings for database ${t.name}`]);
    expect(changes[0]!.detail).toMatch(/granted PUBLIC=C\//);
  });

  it('finds ALTER ... OWNER TO and a new role with its membership', async () => {
    const role = `owner_${randomBytes(3).toString('hex')}`;
    const { changes } = await observe(
      t.db,
      sql`create role ${sql.id(role)}; grant pg_read_all_data to ${sql.id(role)}; alter table users owner to ${sql.id(role)}`,
    );
    expect(summary(changes)).toEqual(
      expect.arrayContaining([`created role ${role}`, `created role membership ${role} in pg_read_all_data`]),
    );
    const users = changes.find((c) => c.identity === 'public.users' && c.objectType === 'table')!;
    expect(users.detail).toContain(`owner changed from postgres to ${role}`);
  });

  it('finds a change made inside a released savepoint', async () => {
    const { changes } = await observe(
      t.db,
      sql`savepoint s; create trigger sneaky after delete on users for each row execute function pg_catalog.suppress_redundant_updates_trigger(); release savepoint s`,
    );
    expect(summary(changes)).toEqual(['created trigger sneaky on public.users [public.users]']);
  });

  it('reports nothing for ANALYZE and TRUNCATE (statistics and storage are judged elsewhere)', async () => {
    const analyzed = await observe(t.db, sql`analyze users; analyze`);
    expect(analyzed.changes).toEqual([]);
    const truncated = await observe(t.db, sql`truncate users cascade`);
    expect(truncated.changes).toEqual([]);
    expect(truncated.storageMoved).toBeGreaterThan(0);
    expect(truncated.writes.get('pg_class')).toEqual(expect.objectContaining({ ins: 0, del: 0 }));
  });

  it('allows temp tables, views and functions without reporting them', async () => {
    const verdict = await observe(
      t.db,
      sql`
      create temp table scratch (id uuid primary key, n int default 1);
      create temp view scratch_v as select * from scratch;
      create function pg_temp.helper() returns int language sql as 'select 1';
      create index on scratch (n);
      insert into scratch select id from users;
      truncate scratch`,
    );
    expect(verdict.changes).toEqual([]);
    expect(verdict.temporaryObjectsChanged).toBe(true);
    expect(verdict.writes.get('pg_class')!.ins).toBeGreaterThan(0);
  });

  it('gives one unidentified change for a temp table created and dropped, and for a rolled-back savepoint', async () => {
    const dropped = await observe(t.db, sql`create temp table gone (x int); drop table gone`);
    // The session's first temp object also adds its pg_temp_N namespaces (pg_namespace +2).
    expect(dropped.changes).toEqual([expect.objectContaining({ action: 'unidentified', objectType: 'catalog rows' })]);
    expect(dropped.changes[0]!.detail).toMatch(/pg_attribute \(\+7 -7\), pg_class \(\+1 -1\), pg_depend \(\+3 -3\)/);
    const undone = await observe(
      t.db,
      sql`savepoint s; create trigger t after delete on users execute function pg_catalog.suppress_redundant_updates_trigger(); rollback to savepoint s`,
    );
    expect(summary(undone.changes)).toEqual(['unidentified catalog rows pg_depend, pg_trigger']);
  });

  it('sees the truth through temp views and functions that shadow the catalogs and a hijacked search_path', async () => {
    const shadows = sql`
      create temp view pg_class as select * from pg_catalog.pg_class where false;
      create temp view pg_trigger as select * from pg_catalog.pg_trigger where false;
      create temp view pg_proc as select * from pg_catalog.pg_proc where false;
      create temp view pg_namespace as select * from pg_catalog.pg_namespace where false;
      create temp view pg_attribute as select attrelid, attname, attnum from pg_catalog.pg_attribute where false;
      create temp view pg_stat_xact_all_tables as select * from pg_catalog.pg_stat_xact_all_tables where false;
      create temp view pg_roles as select * from pg_catalog.pg_roles where false;
      create function pg_temp.md5(text) returns text language sql as 'select ''same''';
      create function pg_temp.pg_identify_object(oid, oid, int) returns text language sql as 'select ''x''';
      create schema evil;
      create function evil.never(oid, oid) returns boolean language sql as 'select false';
      create operator evil.= (leftarg = oid, rightarg = oid, function = evil.never);
      set local search_path = evil, pg_catalog, public`;
    const verdict = await observe(
      t.db,
      sql`alter table users disable trigger all; create temp table gone (x int); drop table gone`,
      shadows,
    );
    expect(verdict.changes.filter((c) => c.detail.includes('trigger disabled')).length).toBeGreaterThanOrEqual(2);
    const scratch = await observe(t.db, sql`create temp table gone (x int); drop table gone`, shadows);
    expect(scratch.changes).toEqual([expect.objectContaining({ action: 'unidentified' })]);
  });

  it('reads the same state as an ordinary role, and sees its changes', async () => {
    const role = `reader_${randomBytes(3).toString('hex')}`;
    await sql`create role ${sql.id(role)} login; grant connect on database ${sql.id(t.name)} to ${sql.id(role)};
              grant create on schema public to ${sql.id(role)}`.execute(t.db);
    const url = new URL(t.url);
    url.username = role;
    const asRole = createDb(url, { maxConnections: 1 });
    try {
      const inTransaction = (db: Db): Promise<CatalogState> => db.transaction().execute((trx) => readCatalogState(trx));
      const [mine, theirs] = [await inTransaction(t.db), await inTransaction(asRole)];
      expect(stableObjects(theirs, t.name)).toEqual(stableObjects(mine, t.name));
      // This file's role is among what both read.
      expect([...theirs.objects.values()].filter((o) => o.identity === role).map((o) => o.catalog)).toEqual(['pg_authid']);
      const verdict = await observe(
        asRole,
        sql`create table public.mine (x int); grant select on public.mine to public;
        create function public.g() returns int language sql as 'select 2'`,
      );
      expect(summary(verdict.changes)).toEqual(
        expect.arrayContaining([
          'created table public.mine [public.mine]',
          'created table column public.mine.x [public.mine]',
          'created function public.g()',
        ]),
      );
    } finally {
      await asRole.destroy();
      await sql`revoke create on schema public from ${sql.id(role)}; drop owned by ${sql.id(role)}; drop role ${sql.id(role)}`.execute(
        t.db,
      );
    }
  });

  it('leaves out a role another session dropped after the snapshot it reads in, instead of naming it with nothing', async () => {
    const role = `gone_${randomBytes(4).toString('hex')}`;
    await sql`create role ${sql.id(role)}`.execute(t.db);
    const holder = createDb(t.url, { maxConnections: 1 });
    const reader = createDb(t.url, { maxConnections: 1 });
    try {
      // The role is in the snapshot, and gone from the catalogs that pg_identify_object reads.
      const state = await holder.connection().execute(async (conn) => {
        await sql`begin isolation level repeatable read`.execute(conn);
        try {
          const { rows } = await sql<{ id: string }>`select pg_export_snapshot() as id`.execute(conn);
          await sql`drop role ${sql.id(role)}`.execute(t.db);
          return await readCatalogStateAt(reader, rows[0]!.id);
        } finally {
          await sql`rollback`.execute(conn);
        }
      });
      const objects = [...state!.objects.values()];
      expect(objects.filter((o) => typeof o.identity !== 'string')).toEqual([]);
      expect(objects.filter((o) => o.identity === role)).toEqual([]);
      expect(objects.some((o) => o.objectType === 'role')).toBe(true);
    } finally {
      await Promise.all([holder.destroy(), reader.destroy()]);
      await sql`drop role if exists ${sql.id(role)}`.execute(t.db);
    }
  });

  it('reads the state in a fixed number of statements', async () => {
    let statements = 0;
    const plugin: KyselyPlugin = {
      transformQuery: (args) => (statements++, args.node),
      transformResult: async (args) => args.result,
    };
    await t.db.transaction().execute(async (trx) => {
      await readCatalogState(trx.withPlugin(plugin));
      expect(statements).toBe(CATALOG_STATE_STATEMENTS);
    });
  });
});
