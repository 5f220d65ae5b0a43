import { sql, type KyselyPlugin } from 'kysely';
import type { Db } from '../src/db/connection.js';
import { CATALOG_QUERY_COUNT, readFingerprints, readShapes, readTableCatalog } from '../src/db/catalog.js';
import { readIdentity, readWalPosition } from '../src/db/identity.js';
import { takeSnapshot } from '../src/snapshot/take.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';

/** Names that break naive quoting: quotes, spaces, case, unicode, dots, pattern characters. */
const WEIRD_SCHEMA = sql`
  create extension if not exists citext;
  create type mood as enum ('happy', 'sad');
  create schema "Weird Schema";
  create table "Weird Schema"."Mixed ""Quoted"" Table" (id int primary key, feeling mood not null default 'happy', note citext);
  create table public."with space" (id int);
  create table public."UPPER" (id int);
  create table public."Ünïcödé_表" (id int);
  create table public."star*?.x" (id int);
  create table "Weird Schema".events (id int, at date not null, primary key (id, at)) partition by range (at);
  create table "Weird Schema".events_2023 partition of "Weird Schema".events for values from ('2023-01-01') to ('2024-01-01');
  create table "Weird Schema".events_2024 partition of "Weird Schema".events for values from ('2024-01-01') to ('2025-01-01');
  create view public.active_users as select * from users where is_active;
  insert into "Weird Schema"."Mixed ""Quoted"" Table" values (1, 'sad', 'Hi'), (2, 'happy', 'there');
  insert into public."with space" select generate_series(1, 3);
  insert into public."Ünïcödé_表" values (1);
  insert into public."star*?.x" values (1), (2);
  create table "Weird Schema".events_2025 partition of "Weird Schema".events for values from ('2025-01-01') to ('2026-01-01') partition by list (id);
  create table "Weird Schema".events_2025_rest partition of "Weird Schema".events_2025 default;
  insert into "Weird Schema".events select g, date '2023-06-01' + g * 30 from generate_series(1, 10) g;
  insert into "Weird Schema".events values (100, '2025-03-01')`;

/** Counts statements sent through a handle. */
function counting(db: Db): { db: Db; count: () => number } {
  let n = 0;
  const plugin: KyselyPlugin = {
    transformQuery: (args) => {
      n++;
      return args.node;
    },
    transformResult: async (args) => args.result,
  };
  return { db: db.withPlugin(plugin), count: () => n };
}

describe('readTableCatalog and the snapshot on unusual schemas', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase('cat');
    await WEIRD_SCHEMA.execute(t.db);
  });
  afterAll(async () => {
    await t.drop();
  });

  it('keys every table schema.table as written, with partitions summed and views left out', async () => {
    const { snapshot } = await takeSnapshot(t.db, { exactCountThreshold: 1_000_000 });
    const rows = (key: string): number | undefined => snapshot.tables[key]?.rows;
    expect(rows('Weird Schema.Mixed "Quoted" Table')).toBe(2);
    expect(rows('public.with space')).toBe(3);
    expect(rows('public.UPPER')).toBe(0);
    expect(rows('public.Ünïcödé_表')).toBe(1);
    expect(rows('public.star*?.x')).toBe(2);
    expect(rows('Weird Schema.events_2023')! + rows('Weird Schema.events_2024')!).toBe(10);
    expect(rows('Weird Schema.events')).toBe(11);
    // Two levels: the sub-partitioned 2025 range is a partitioned table of its own.
    expect(rows('Weird Schema.events_2025')).toBe(1);
    expect(snapshot.tables['Weird Schema.events_2025']!.rowsKind).toBe('exact');
    expect(snapshot.tables['public.active_users']).toBeUndefined();

    const parent = snapshot.tables['Weird Schema.events']!;
    expect(parent).toEqual(expect.objectContaining({ kind: 'partitioned', relfilenode: 0, counters: null, rowsKind: 'exact' }));
    expect(snapshot.tables['Weird Schema.events_2023']!.kind).toBe('table');
  });

  it("estimates a partitioned table as the sum of its leaves' estimates", async () => {
    await sql`analyze "Weird Schema".events`.execute(t.db);
    const catalog = await readTableCatalog(t.db);
    expect(catalog['Weird Schema.events']!.estimate).toBe(11);
    expect(catalog['Weird Schema.events']!.leafPartitions).toEqual([
      'Weird Schema.events_2023',
      'Weird Schema.events_2024',
      'Weird Schema.events_2025_rest',
    ]);
  });

  it('changes the fingerprint on ADD COLUMN and CREATE INDEX, not on inserts', async () => {
    const fingerprint = async (): Promise<string> => (await readTableCatalog(t.db))['public.users']!.fingerprint;
    const before = await fingerprint();
    await sql`insert into users (email) values ('new.person@example.com')`.execute(t.db);
    expect(await fingerprint()).toBe(before);
    await sql`alter table users add column nickname text`.execute(t.db);
    const afterColumn = await fingerprint();
    expect(afterColumn).not.toBe(before);
    await sql`create index users_nickname_idx on users (nickname)`.execute(t.db);
    expect(await fingerprint()).not.toBe(afterColumn);
  });

  it('sees TRUNCATE as a new relfilenode, also inside the transaction that did it', async () => {
    const weird = 'Weird Schema.Mixed "Quoted" Table';
    const before = await readTableCatalog(t.db);
    const rolledBack = new Error('roll back');
    const outcome = await t.db
      .transaction()
      .execute(async (trx) => {
        await sql`truncate oidc_models`.execute(trx);
        const inside = (await readTableCatalog(trx))['public.oidc_models']!;
        expect(inside.relfilenode).not.toBe(before['public.oidc_models']!.relfilenode);
        expect(inside.fingerprint).toBe(before['public.oidc_models']!.fingerprint);
        throw rolledBack;
      })
      .catch((error: unknown) => error);
    expect(outcome).toBe(rolledBack);
    await sql`truncate "Weird Schema"."Mixed ""Quoted"" Table"`.execute(t.db);
    const after = await readTableCatalog(t.db);
    expect(after[weird]!.relfilenode).not.toBe(before[weird]!.relfilenode);
    expect(after['public.oidc_models']!.relfilenode).toBe(before['public.oidc_models']!.relfilenode);
  });

  it('reads the catalog in a fixed number of statements, however many tables there are', async () => {
    const first = counting(t.db);
    const catalog = await readTableCatalog(first.db);
    expect(first.count()).toBe(CATALOG_QUERY_COUNT);
    await sql`do $$ begin for i in 1..40 loop execute format('create table many_%s (id int primary key, v text)', i); end loop; end $$`.execute(
      t.db,
    );
    const second = counting(t.db);
    const bigger = await readTableCatalog(second.db);
    expect(Object.keys(bigger).length).toBe(Object.keys(catalog).length + 40);
    expect(second.count()).toBe(CATALOG_QUERY_COUNT);
  });

  it('reads the same shapes alone, as the guard does, as in the whole fingerprints', async () => {
    const whole = await readFingerprints(t.db, null);
    const shapes = await readShapes(t.db, null);
    expect(whole.size).toBeGreaterThan(5);
    expect(new Map([...shapes].sort(([a], [b]) => a - b))).toEqual(
      new Map([...whole].map(([oid, f]) => [oid, f.shape] as const).sort(([a], [b]) => a - b)),
    );
    expect([...whole.values()].every((f) => /^[0-9a-f]{64}$/.test(f.shape) && /^[0-9a-f]{64}$/.test(f.behaviour))).toBe(true);
  });

  it('reads identity and WAL position without privileges it may lack', async () => {
    await sql`create role snap_reader login; grant select on all tables in schema public to snap_reader`.execute(t.db);
    const identity = await readIdentity(t.db, new URL(t.url));
    expect(identity.name).toBe(t.name);
    expect(identity.port).toBe(Number(new URL(t.url).port));
    const wal = await readWalPosition(t.db);
    expect(wal.xid).toBeNull();
    await t.db.transaction().execute(async (trx) => {
      await sql`set local role snap_reader`.execute(trx);
      const asReader = await readIdentity(trx);
      expect(asReader.currentUser).toBe('snap_reader');
      // Revoked from PUBLIC on PostgreSQL 15: null, and the transaction is still usable.
      const allowed = (await sql<{ ok: boolean }>`select has_function_privilege('pg_control_system()', 'execute') as ok`.execute(trx))
        .rows[0]!.ok;
      expect(asReader.systemIdentifier === null).toBe(!allowed);
      expect((await readTableCatalog(trx))['public.users']).toBeDefined();
    });
  });
});
