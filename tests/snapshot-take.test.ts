import { sql } from 'kysely';
import { createDb, type Db } from '../src/db/connection.js';
import { readTableCatalog } from '../src/db/catalog.js';
import type { Snapshot } from '../src/records/index.js';
import { takeSnapshot } from '../src/snapshot/take.js';
import { waitFor } from './helpers/attacks.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';

/** count(*) per table, read fresh for comparison with a snapshot. */
async function liveCounts(db: Db, keys: readonly string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const key of keys) {
    const [schema, ...rest] = key.split('.');
    const r = await sql<{ n: number }>`select count(*)::int8 as n from ${sql.id(schema!, rest.join('.'))}`.execute(db);
    out[key] = r.rows[0]!.n;
  }
  return out;
}

describe('takeSnapshot', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase('snap');
    // safe-run's own schema must never appear in its snapshots (SPEC: chain_head is excluded).
    await sql`create schema safe_run; create table safe_run.chain_head (seq int)`.execute(t.db);
  });
  afterAll(async () => {
    await t.drop();
  });

  it('counts every demo table exactly, as count(*) does, and leaves safe_run out', async () => {
    const { snapshot } = await takeSnapshot(t.db, { exactCountThreshold: 1_000_000, url: new URL(t.url) });
    const keys = Object.keys(snapshot.tables);
    expect(keys).toEqual(
      expect.arrayContaining([
        'public.credit_allocation',
        'public.models',
        'public.oauth_clients',
        'public.oidc_models',
        'public.subscriptions',
        'public.usage_events',
        'public.users',
      ]),
    );
    expect(keys).toEqual([...keys].sort());
    expect(keys.some((k) => k.startsWith('safe_run.'))).toBe(false);
    const live = await liveCounts(t.db, keys);
    for (const key of keys) {
      expect({ key, rows: snapshot.tables[key]!.rows, kind: snapshot.tables[key]!.rowsKind }).toEqual({
        key,
        rows: live[key],
        kind: 'exact',
      });
    }
    const users = snapshot.tables['public.users']!;
    expect(users.relfilenode).toBeGreaterThan(0);
    expect(users.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(users.counters).toEqual(expect.objectContaining({ n_tup_ins: expect.any(Number), n_live_tup: expect.any(Number) }));

    const { oid } = (await sql<{ oid: number }>`select oid::int8 as oid from pg_database where datname = current_database()`.execute(t.db))
      .rows[0]!;
    expect(snapshot.database).toEqual(
      expect.objectContaining({ oid, name: t.name, serverVersionNum: expect.any(Number), currentUser: 'postgres' }),
    );
    expect(snapshot.database.key).toBe(`127.0.0.1:${new URL(t.url).port}/${t.name}`);
    expect(snapshot.database.systemIdentifier).toMatch(/^\d+$/);
    expect(snapshot.walLsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    // How long it took is recorded, not judged here: npm run bench measures it.
    expect(snapshot.durationMs).toEqual(expect.any(Number));
  });

  it('uses the estimate above exactCountThreshold, except for exactTables', async () => {
    await sql`analyze`.execute(t.db);
    const { snapshot } = await takeSnapshot(t.db, { exactCountThreshold: 5, exactTables: new Set(['public.oidc_models']) });
    const users = snapshot.tables['public.users']!;
    expect(users.rowsKind).toBe('estimate');
    expect(users.rows).toBe((await liveCounts(t.db, ['public.users']))['public.users']);
    expect(snapshot.tables['public.oidc_models']!.rowsKind).toBe('exact');
    // An empty table is cheap to count, so it is counted.
    expect(snapshot.tables['public.oauth_clients']!.rows).toBeLessThanOrEqual(5);
    expect(snapshot.tables['public.oauth_clients']!.rowsKind).toBe('exact');
  });

  it('without a threshold counts only exactTables; every other table comes from the catalog and statistics', async () => {
    // A count(*) of users would see this row; the statistics do not (no ANALYZE since).
    await sql`analyze users`.execute(t.db);
    await sql`insert into users (id, email, name, is_active) values (gen_random_uuid(), 'not.counted@example.com', 'x', true)`.execute(
      t.db,
    );
    const { snapshot } = await takeSnapshot(t.db, { exactTables: new Set(['public.oidc_models']), url: new URL(t.url) });
    const live = await liveCounts(t.db, ['public.oidc_models', 'public.users']);
    expect(snapshot.tables['public.oidc_models']).toMatchObject({ rowsKind: 'exact', rows: live['public.oidc_models'] });
    const users = snapshot.tables['public.users']!;
    expect(users.rowsKind).toBe('estimate');
    expect(users.rows).toBe(live['public.users']! - 1);
    // What check and blame compare for an estimated table is still recorded.
    expect(users.relfilenode).toBeGreaterThan(0);
    expect(users.counters).toEqual(expect.objectContaining({ n_tup_del: expect.any(Number), n_tup_ins: expect.any(Number) }));
    for (const [key, table] of Object.entries(snapshot.tables)) {
      expect({ key, kind: table.rowsKind }).toEqual({ key, kind: key === 'public.oidc_models' ? 'exact' : 'estimate' });
    }
    await sql`delete from users where email = 'not.counted@example.com'`.execute(t.db);
  });

  it('records knownCounts as exact without scanning those tables', async () => {
    // A number no scan could produce: if it is in the snapshot, nothing counted the table.
    const { snapshot } = await takeSnapshot(t.db, {
      exactTables: new Set(['public.users']),
      knownCounts: { 'public.users': 123_456, 'public.no_such_table': 7 },
    });
    expect(snapshot.tables['public.users']).toMatchObject({ rows: 123_456, rowsKind: 'exact' });
    expect(snapshot.tables['public.no_such_table']).toBeUndefined();
  });

  it('runs whileOpen alongside the exact counts, not after them', async () => {
    // The count waits behind a lock that only whileOpen releases: run one after the other,
    // the two would wait for each other forever.
    await sql`create table locked (id int)`.execute(t.db);
    const locker = createDb(t.url, { maxConnections: 1 });
    const trx = await locker.startTransaction().execute();
    try {
      await sql`lock table locked in access exclusive mode`.execute(trx);
      const { snapshot, held } = await takeSnapshot(t.db, { exactTables: new Set(['public.locked']), connections: 1 }, async () => {
        await waitFor(async () => {
          const { rows } = await sql<{ n: number }>`
            select count(*)::int as n from pg_stat_activity
             where datname = current_database() and wait_event_type = 'Lock' and query like '%count(*)%locked%'`.execute(t.db);
          return rows[0]!.n > 0;
        });
        await trx.commit().execute();
        return 'released';
      });
      expect(held).toBe('released');
      expect(snapshot.tables['public.locked']).toMatchObject({ rows: 0, rowsKind: 'exact' });
    } finally {
      await trx
        .rollback()
        .execute()
        .catch(() => {});
      await locker.destroy();
    }
  });

  it('keeps the counts and whileOpen on the exported snapshot while others insert', async () => {
    // Each transaction of the writer adds one row to each table: any consistent read sees
    // equal growth in all three; reads from different instants would not.
    await sql`
      create table big (id bigserial primary key, pad text);
      insert into big (pad) select 'x' from generate_series(1, 300000);
      create table small_a (id bigserial primary key);
      create table small_b (id bigserial primary key)`.execute(t.db);
    const writer = createDb(t.url, { maxConnections: 1 });
    let writing = true;
    const loop = (async () => {
      let n = 0;
      while (writing) {
        await sql`begin; insert into big (pad) values ('w'); insert into small_a default values; insert into small_b default values; commit`.execute(
          writer,
        );
        n++;
      }
      return n;
    })();
    try {
      await new Promise((r) => setTimeout(r, 50));
      const { snapshot, held } = await takeSnapshot(
        t.db,
        { exactCountThreshold: 1_000_000, exactTables: new Set(['public.big']) },
        async (snapshotId) => {
          await sql`insert into small_a default values`.execute(t.db);
          // Another connection importing the snapshot still sees the counted state.
          return t.db
            .transaction()
            .setIsolationLevel('repeatable read')
            .execute(async (trx) => {
              await sql`set transaction snapshot ${sql.lit(snapshotId)}`.execute(trx);
              return (await sql<{ n: number }>`select count(*)::int8 as n from small_a`.execute(trx)).rows[0]!.n;
            });
        },
      );
      const big = snapshot.tables['public.big']!.rows - 300_000;
      expect(snapshot.tables['public.small_a']!.rows).toBe(big);
      expect(snapshot.tables['public.small_b']!.rows).toBe(big);
      expect(held).toBe(big);
    } finally {
      writing = false;
      const written = await loop;
      await writer.destroy();
      expect(written).toBeGreaterThan(0);
    }
  });

  it('records the same fingerprints whether they are read beside the counts or on the exporting connection', async () => {
    const fingerprints = (s: Snapshot): Record<string, [string, string | undefined]> =>
      Object.fromEntries(Object.entries(s.tables).map(([k, v]) => [k, [v.fingerprint, v.behaviourFingerprint]]));
    const catalog = await readTableCatalog(t.db);
    const aside = (await takeSnapshot(t.db, { connections: 2 })).snapshot;
    const alone = (await takeSnapshot(t.db, { connections: 1 })).snapshot;
    expect(fingerprints(aside)).toEqual(fingerprints(alone));
    expect(Object.keys(aside.tables).sort()).toEqual(Object.keys(catalog).sort());
    for (const [key, table] of Object.entries(catalog)) expect(aside.tables[key]!.fingerprint).toBe(table.fingerprint);
    expect(aside.tables['public.users']!.fingerprint).toMatch(/^[0-9a-f]{64}$/);
  });

  it.each([1, 2])('completes on a pool of %i connection(s), whatever connections asks for', async (connections) => {
    // A pool of one: everything on the exporting connection. Two: the fingerprints on the other.
    const small = createDb(t.url, { maxConnections: connections });
    try {
      const { snapshot } = await takeSnapshot(small, { connections: 4, exactCountThreshold: 1_000_000 });
      expect(snapshot.tables['public.users']!.rowsKind).toBe('exact');
      expect(snapshot.tables['public.users']!.rows).toBe((await liveCounts(t.db, ['public.users']))['public.users']);
      expect(snapshot.tables['public.users']!.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    } finally {
      await small.destroy();
    }
  });

  it('counts on the exporting connection alone when given one connection', async () => {
    const { snapshot } = await takeSnapshot(t.db, { exactCountThreshold: 1_000_000, connections: 1 });
    expect(snapshot.tables['public.users']!.rowsKind).toBe('exact');
    expect(snapshot.tables['public.users']!.rows).toBe((await liveCounts(t.db, ['public.users']))['public.users']);
  });

  // Each connection is a server process started for the snapshot: it must open no more than it is given.
  it.each([1, 2, 3])('opens at most %i connection(s) of a larger pool when given that many', async (connections) => {
    const applicationName = `snapshot-budget-${connections}`;
    const pool = createDb(t.url, { maxConnections: 6, applicationName });
    try {
      const { snapshot } = await takeSnapshot(pool, { connections, exactCountThreshold: 1_000_000 });
      expect(snapshot.tables['public.users']!.rowsKind).toBe('exact');
      // A pool keeps what it opened, idle, for ten seconds: what is there now is everything it opened.
      const { rows } = await sql<{ n: number }>`
        select count(*)::int as n from pg_stat_activity where application_name = ${applicationName}`.execute(t.db);
      expect(rows[0]!.n).toBeLessThanOrEqual(connections);
      expect(rows[0]!.n).toBe(Math.min(connections, 2));
    } finally {
      await pool.destroy();
    }
  });
});

describe('takeSnapshot progress', () => {
  it('reports each exact count as it finishes, for the terminal bar of `snapshot --exact`', async () => {
    const t = await createTestDatabase('snapshot-progress');
    try {
      const seen: [number, number, string][] = [];
      const { snapshot } = await takeSnapshot(t.db, {
        exactTables: new Set(['public.users', 'public.oidc_models']),
        onCounted: (done, total, table) => seen.push([done, total, table]),
      });
      const exact = Object.entries(snapshot.tables)
        .filter(([, table]) => table.rowsKind === 'exact')
        .map(([key]) => key);
      expect(seen.map(([, , table]) => table).sort()).toEqual(exact.sort());
      expect(seen.map(([done]) => done)).toEqual(exact.map((_, i) => i + 1));
      expect(new Set(seen.map(([, total]) => total))).toEqual(new Set([exact.length]));
    } finally {
      await t.drop();
    }
  });
});
