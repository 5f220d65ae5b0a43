import { sql } from 'kysely';
import { createDb, type Db } from '../src/db/connection.js';
import { readOwnRows, sameCommitted } from '../src/guard/own-rows.js';
import { countRows, createTestDatabase, type TestDatabase } from './helpers/db.js';

/**
 * The script's own net rows, counted inside its transaction against the committed state
 * (guard/own-rows.ts). They are what catches a superuser script that deletes with its
 * counters switched off, so another session committing beside the counts must not hide them.
 */
describe('sameCommitted', () => {
  it.each([
    ['nothing started or finished', '100:104:100,102', '100:104:100,102', true],
    ['a transaction started and still running', '100:104:100,102', '100:106:100,102,104,105', true],
    ['a running transaction finished', '100:104:100,102', '100:104:102', false],
    ['the oldest running transaction finished', '100:104:100,102', '102:104:102', false],
    ['a transaction started and finished in between', '100:104:100', '100:106:100,104', false],
    ['too many transactions in between to compare', '100:104:', '100:20105:', false],
  ])('%s', (_case, earlier, later, same) => {
    expect(sameCommitted(earlier, later)).toBe(same);
  });
});

describe('readOwnRows', () => {
  let t: TestDatabase;
  let runner: Db;
  let scriptDb: Db;
  let other: Db;

  beforeAll(async () => {
    t = await createTestDatabase('ownrows');
    runner = createDb(t.url, { maxConnections: 4, applicationName: 'own-rows-runner' });
    scriptDb = createDb(t.url, { maxConnections: 1 });
    other = createDb(t.url, { maxConnections: 1 });
    await sql`create table own_rows_gate (id int)`.execute(t.db);
  });
  afterAll(async () => {
    await Promise.all([runner.destroy(), scriptDb.destroy(), other.destroy()]);
    await t.drop();
  });

  const users = { schema: 'public', name: 'users', key: 'public.users' };
  const gate = { schema: 'public', name: 'own_rows_gate', key: 'public.own_rows_gate' };

  it('finds rows a transaction deleted uncounted while another session commits rows to the table during the counts', async () => {
    const trx = await scriptDb.startTransaction().execute();
    const otherTrx = await other.startTransaction().execute();
    try {
      const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx);
      await sql`set local track_counts = off`.execute(trx);
      await sql`delete from users where id in (select id from users order by id limit 3)`.execute(trx);
      // The other session holds a table the count inside reads too, until it has committed
      // three users of its own: the committed count of users read before that commit and the
      // count inside read after it differ by exactly what the script deleted, so taken as one
      // bracket they would say the script changed nothing.
      await sql`lock table own_rows_gate in access exclusive mode`.execute(otherTrx);
      const reading = readOwnRows(runner, trx, [users], {}, [users, gate]);
      reading.catch(() => {});
      await untilWaitingForLock(t.db, rows[0]!.pid);
      await sql`insert into users (email, name)
                select 'other-' || g || '@example.org', 'other ' || g from generate_series(1, 3) g`.execute(otherTrx);
      await otherTrx.commit().execute();
      const own = await reading;
      expect(own.blocked).toEqual([]);
      expect(own.net['public.users']).toBe(-3);
      expect(own.inside['public.users']).toBe((await countRows(t.db, 'users')) - 3);
    } finally {
      await otherTrx
        .rollback()
        .execute()
        .catch(() => {});
      await trx.rollback().execute();
    }
  });

  it('names a table the transaction locks against the runner as blocked, rather than waiting on it', async () => {
    const trx = await scriptDb.startTransaction().execute();
    try {
      await sql`lock table users in access exclusive mode`.execute(trx);
      const own = await readOwnRows(runner, trx, [users], {});
      expect(own.blocked).toEqual(['public.users']);
      expect(own.net).toEqual({});
      expect(own.inside['public.users']).toBe(await countRows(trx, 'users'));
    } finally {
      await trx.rollback().execute();
    }
  });

  it('counts the committed rows once when no transaction commits meanwhile', async () => {
    const trx = await scriptDb.startTransaction().execute();
    try {
      await sql`set local track_counts = off`.execute(trx);
      await sql`delete from users where id in (select id from users order by id limit 2)`.execute(trx);
      const own = await readOwnRows(runner, trx, [users], {});
      expect(own.net['public.users']).toBe(-2);
      expect(own.inside['public.users']).toBe((await countRows(t.db, 'users')) - 2);
    } finally {
      await trx.rollback().execute();
    }
  });
});

async function untilWaitingForLock(db: Db, pid: number): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from pg_stat_activity where pid = ${pid} and wait_event_type = 'Lock'`.execute(db);
    if (rows[0]!.n > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error("the count inside the transaction never waited for the other session's lock");
}
