import { sql } from 'kysely';
import { createDb, type Db } from '../src/db/connection.js';
import { takeSnapshot } from '../src/snapshot/take.js';
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
        { exactCountThreshold: 1_000_000, exactTables: new Set(['public.big']), countConnections: 2 },
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

  it('counts on the exporting connection alone when countConnections is 0', async () => {
    const { snapshot } = await takeSnapshot(t.db, { exactCountThreshold: 1_000_000, countConnections: 0 });
    expect(snapshot.tables['public.users']!.rowsKind).toBe('exact');
    expect(snapshot.tables['public.users']!.rows).toBe((await liveCounts(t.db, ['public.users']))['public.users']);
  });
});
