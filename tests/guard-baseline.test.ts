import { sql, type KyselyPlugin } from 'kysely';
import { createDb, type Db } from '../src/db/connection.js';
import { prepareBaseline, withStorageNow, type PreparedBaseline } from '../src/guard/baseline.js';
import { readCatalogStateAt, readCatalogWrites } from '../src/guard/catalog-changes.js';
import type { CatalogChange } from '../src/guard/catalog-diff.js';
import { readCatalogVerdict, type CatalogVerdict } from '../src/guard/catalog-verdict.js';
import { measureChanges, readOwnLocks, readXactCounters, readSequencePositions } from '../src/guard/measure.js';
import { readTableShapes } from '../src/guard/shapes.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';

/**
 * The guard's cheaper measuring path (guard/baseline.ts, readCatalogVerdict, shapes read
 * with fingerprints only where the transaction locked strongly) must still catch what the
 * full before/after reads caught. Each case prepares the baseline on the session the way a
 * run does (before its transaction), then runs the "script" in a transaction on that same
 * session, measures as transaction.ts does, and rolls back.
 */
interface Observed {
  readonly verdict: CatalogVerdict;
  readonly changes: ReturnType<typeof measureChanges>['changes'];
  /** Statements the catalog verdict issued after the script. */
  readonly verdictStatements: number;
  readonly fingerprinted: readonly string[];
}

/** `between` runs after the baseline is prepared and before BEGIN. */
interface Around {
  readonly between?: () => Promise<unknown>;
}

/** The runner's connection: it reads the catalog as BEGIN found it, as a run's pool does. */
let runner: Db;

async function observe(
  session: Db,
  script: (trx: Db) => Promise<unknown>,
  trust: 'role' | 'superuser' = 'role',
  around: Around = {},
): Promise<Observed> {
  const prepared: PreparedBaseline = await prepareBaseline(session);
  await around.between?.();
  const trx = await session.startTransaction().execute();
  try {
    const { rows } = await sql<{ snapshot: string }>`select pg_catalog.pg_export_snapshot() as snapshot`.execute(trx);
    const atBegin = (): ReturnType<typeof readCatalogStateAt> => readCatalogStateAt(runner, rows[0]!.snapshot);
    const before = {
      counters: await readXactCounters(trx),
      shapes: await withStorageNow(trx, prepared.shapes),
      sequences: await readSequencePositions(trx),
      writes: await readCatalogWrites(trx),
    };
    await script(trx);
    const ownLocks = await readOwnLocks(trx);
    const locks = ownLocks.strong;
    const shapes = await readTableShapes(trx, locks);
    const current = { counters: await readXactCounters(trx), shapes, sequences: await readSequencePositions(trx) };
    let verdictStatements = 0;
    const counting: KyselyPlugin = {
      transformQuery: (args) => (verdictStatements++, args.node),
      transformResult: async (args) => args.result,
    };
    const verdict = await readCatalogVerdict(
      trx.withPlugin(counting),
      { writes: before.writes, ownRows: prepared.ownRows },
      trust,
      ownLocks,
      atBegin,
    );
    return {
      verdict,
      changes: measureChanges(before, current, locks).changes,
      verdictStatements,
      fingerprinted: [...shapes.values()].filter((s) => s.fingerprint !== '').map((s) => s.key),
    };
  } finally {
    await trx.rollback().execute();
  }
}

const summary = (changes: readonly CatalogChange[]): string[] => changes.map((c) => `${c.action} ${c.objectType} ${c.identity}`);

describe('the guard measured against a baseline prepared before the transaction', () => {
  let t: TestDatabase;
  let session: Db;
  beforeAll(async () => {
    t = await createTestDatabase('baseline');
    session = createDb(t.url, { maxConnections: 1 });
    runner = t.db;
  });
  afterAll(async () => {
    await session.destroy();
    await t.drop();
  });

  it('reads no catalog state again after a script that only changed rows, and fingerprints nothing', async () => {
    const seen = await observe(session, (trx) => sql`delete from oidc_models where kind = 'Session'`.execute(trx));
    expect(seen.verdict.changes).toEqual([]);
    // One read of the transaction's catalog counters (savepoint, set, read, rollback to, release), not the state.
    expect(seen.verdictStatements).toBe(5);
    expect(seen.fingerprinted).toEqual([]);
    expect(seen.changes['public.oidc_models']?.deleted).toBeGreaterThan(0);
  });

  it('still names a trigger switched off by the script', async () => {
    const seen = await observe(session, (trx) => sql`alter table users disable trigger all`.execute(trx));
    expect(summary(seen.verdict.changes)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^altered trigger "RI_ConstraintTrigger_a_\d+" on public\.users$/)]),
    );
    expect(seen.verdictStatements).toBeGreaterThan(5);
  });

  it('still finds catalog work undone in a savepoint, which leaves no object to name', async () => {
    const seen = await observe(session, async (trx) => {
      await sql`savepoint s`.execute(trx);
      await sql`create trigger t after delete on users execute function pg_catalog.suppress_redundant_updates_trigger()`.execute(trx);
      await sql`rollback to savepoint s`.execute(trx);
    });
    expect(summary(seen.verdict.changes)).toEqual(['unidentified catalog rows pg_depend, pg_trigger']);
  });

  it('fingerprints the table the script altered under its own lock, and sees the DDL against the prepared shape', async () => {
    const seen = await observe(session, (trx) => sql`alter table oidc_models add column note text`.execute(trx));
    expect(seen.fingerprinted).toEqual(['public.oidc_models']);
    expect(seen.changes['public.oidc_models']).toEqual(expect.objectContaining({ ddl: true }));
  });

  it('counts a table the script dropped as its own DDL: its lock outlives its pg_class row', async () => {
    await sql`create table scratch_drop (id int)`.execute(session);
    try {
      const seen = await observe(session, (trx) => sql`drop table scratch_drop`.execute(trx));
      expect(seen.changes['public.scratch_drop']).toEqual(expect.objectContaining({ ddl: true }));
    } finally {
      await sql`drop table if exists scratch_drop`.execute(session);
    }
  });

  it('sees a TRUNCATE against the prepared storage', async () => {
    const seen = await observe(session, (trx) => sql`truncate oidc_models`.execute(trx));
    expect(seen.changes['public.oidc_models']).toEqual(expect.objectContaining({ truncated: true }));
    expect(seen.changes['public.oidc_models']?.ddl).toBeUndefined();
  });

  it('under trust superuser, still names DDL a pre-existing function makes with counting switched off', async () => {
    // The attack: the catalog write counters stay at zero, so the shortcut alone would read nothing.
    await sql`create function sneaky_ddl() returns void language plpgsql set track_counts = off
              as $$ begin create table sneaky_made(x int); end $$`.execute(session);
    try {
      const blind = await observe(session, (trx) => sql`select sneaky_ddl()`.execute(trx), 'role');
      expect(blind.verdict.changes).toEqual([]); // what the counters alone would say
      const seen = await observe(session, (trx) => sql`select sneaky_ddl()`.execute(trx), 'superuser');
      expect(summary(seen.verdict.changes)).toEqual(expect.arrayContaining([expect.stringMatching(/sneaky_made/)]));
      // The catalog rows carrying this transaction's xid say the changes are its own work.
      expect(seen.verdict.ownWork).toBe(true);
    } finally {
      await sql`drop function sneaky_ddl()`.execute(session);
    }
  });

  it.each(['role', 'superuser'] as const)(
    "under trust %s, does not count a role another session creates during the transaction as the transaction's work",
    async (trust) => {
      try {
        const seen = await observe(
          session,
          async (trx) => {
            await sql`delete from oidc_models where kind = 'Session'`.execute(trx);
            await sql`create role made_elsewhere`.execute(t.db);
          },
          trust,
        );
        expect(seen.verdict.ownWork).toBe(false);
      } finally {
        await sql`drop role if exists made_elsewhere`.execute(t.db);
      }
    },
  );

  it("under trust superuser, does not count a role another session drops with its membership as the transaction's work", async () => {
    await sql`create role granted_elsewhere`.execute(t.db);
    await sql`create role member_elsewhere in role granted_elsewhere`.execute(t.db);
    try {
      const seen = await observe(
        session,
        async (trx) => {
          await sql`delete from oidc_models where kind = 'Session'`.execute(trx);
          await sql`drop role member_elsewhere`.execute(t.db);
        },
        'superuser',
      );
      expect(seen.verdict.ownWork).toBe(false);
    } finally {
      await sql`drop role if exists member_elsewhere, granted_elsewhere`.execute(t.db);
    }
  });

  it.each([
    ['role', 'a role (another catalog)', 'role'],
    ['superuser', 'a role (another catalog)', 'role'],
    ['role', 'a table (the same catalog)', 'table'],
    ['superuser', 'a table (the same catalog)', 'table'],
  ] as const)(
    'under trust %s, names the table the transaction created and not %s another session created meanwhile',
    async (trust, _what, kind) => {
      try {
        const seen = await observe(
          session,
          async (trx) => {
            await sql`create table made_here (x int)`.execute(trx);
            await sql.raw(kind === 'role' ? 'create role made_elsewhere' : 'create table made_elsewhere (y int)').execute(t.db);
          },
          trust,
        );
        expect(seen.verdict.ownWork).toBe(true);
        expect(summary(seen.verdict.changes)).toEqual(['created table column public.made_here.x', 'created table public.made_here']);
      } finally {
        await sql.raw(`drop ${kind} if exists made_elsewhere`).execute(t.db);
      }
    },
  );

  it.each(['role', 'superuser'] as const)(
    'under trust %s, does not name what another session dropped or altered between the baseline and BEGIN',
    async (trust) => {
      await sql`create role dropped_elsewhere`.execute(t.db);
      await sql`create table altered_elsewhere (x int)`.execute(t.db);
      try {
        const between = async (): Promise<void> => {
          await sql`drop role dropped_elsewhere`.execute(t.db);
          await sql`grant select on altered_elsewhere to public`.execute(t.db);
        };
        const seen = await observe(session, (trx) => sql`create table made_here (x int)`.execute(trx), trust, { between });
        expect(summary(seen.verdict.changes)).toEqual(['created table column public.made_here.x', 'created table public.made_here']);
      } finally {
        await sql`drop role if exists dropped_elsewhere`.execute(t.db);
        await sql`drop table if exists altered_elsewhere`.execute(t.db);
      }
    },
  );

  describe('the catalog as BEGIN found it, read behind the ACCESS EXCLUSIVE locks the transaction holds', () => {
    // Every definition that PostgreSQL's deparsers (pg_get_expr, pg_get_viewdef, ...) can only
    // print by opening the table, which waits for the script's lock: a column default, a
    // generated column, CHECK and EXCLUDE constraints, an expression index with a predicate, a
    // trigger's WHEN, a view, a rule, a policy, a partition key and bound, expression statistics.
    beforeAll(async () => {
      await sql
        .raw(
          `
        create table locked_all (id int primary key, v int check (v > 0), w int default 42,
                                 g int generated always as (v * 2) stored, e int, exclude using btree ((e + 1) with =));
        create index locked_all_expr on locked_all ((v + 1)) where v > 3;
        create table locked_child (id int references locked_all (id) on delete cascade);
        create function locked_noop() returns trigger language plpgsql as 'begin return new; end';
        create trigger locked_when before update on locked_all for each row when (old.v is distinct from new.v) execute function locked_noop();
        create view locked_view as select id, v from locked_all where v > 1;
        create rule locked_rule as on delete to locked_child do also notify locked_child;
        create policy locked_policy on locked_all using (v > 0) with check (w > 0);
        create table locked_parts (k int, x int default 7) partition by range ((k + 0));
        create table locked_part1 partition of locked_parts for values from (0) to (10);
        create statistics locked_stats on (v + 1), w from locked_all;
      `,
        )
        .execute(t.db);
    });
    afterAll(async () => {
      await sql.raw(`drop table locked_child, locked_parts, locked_all cascade; drop function locked_noop()`).execute(t.db);
    });
    const lockEverything = sql`lock table locked_all, locked_child, locked_view, locked_parts, locked_part1 in access exclusive mode`;

    it.each(['role', 'superuser'] as const)('under trust %s, names the policy the script added to a table it locked', async (trust) => {
      const seen = await observe(
        session,
        async (trx) => {
          await lockEverything.execute(trx);
          await sql`create policy evil_policy on locked_all using (true)`.execute(trx);
        },
        trust,
      );
      expect(summary(seen.verdict.changes)).toEqual(['created policy evil_policy on public.locked_all']);
    });

    it('names a column default the script changed, and nothing it did not touch', async () => {
      const seen = await observe(session, async (trx) => {
        await lockEverything.execute(trx);
        await sql`alter table locked_all alter column w set default 0`.execute(trx);
      });
      expect(seen.verdict.changes).toEqual([
        expect.objectContaining({
          action: 'altered',
          identity: 'public.locked_all.w',
          detail: 'table column public.locked_all.w: default changed',
        }),
      ]);
    });
  });

  it('clears nothing when a lock on a system catalog keeps the catalog as BEGIN found it unread', async () => {
    const seen = await observe(
      session,
      async (trx) => {
        await sql`lock table pg_catalog.pg_class in access exclusive mode`.execute(trx);
        await sql`create table made_behind_lock (x int)`.execute(trx);
      },
      'superuser',
    );
    expect(seen.verdict.ownWork).toBe(true);
    expect(seen.verdict.changes).toEqual([
      expect.objectContaining({ action: 'unidentified', detail: expect.stringContaining('a lock on a system catalog kept the catalog') }),
    ]);
  });

  it('under trust superuser, looks for catalog rows its transaction wrote after a script that only changed rows, not the whole state', async () => {
    const seen = await observe(session, (trx) => sql`delete from oidc_models where kind = 'Session'`.execute(trx), 'superuser');
    expect(seen.verdict.changes).toEqual([]);
    // Savepoint, set, the counters, the check that the prepared scan is this run's, the scan, rollback to, release: the full state read would add its own five.
    expect(seen.verdictStatements).toBe(7);
    // The scan ran the plan made before the transaction, once there and once after the script.
    const { rows } = await sql<{ generic_plans: string }>`
      select generic_plans from pg_catalog.pg_prepared_statements where name like 'safe_run_own_catalog_rows_%' order by prepare_time desc limit 1`.execute(
      session,
    );
    expect(rows.map((r) => Number(r.generic_plans))).toEqual([2]);
  });

  /** A pre-existing function that runs `body` with the catalog write counters switched off, as only a superuser can. */
  async function blindly(body: string, run: (trx: Db) => Promise<unknown>): Promise<Observed> {
    await sql`create function blind_ddl() returns void language plpgsql set track_counts = off as ${sql.lit(`begin ${body}; end`)}`.execute(
      session,
    );
    try {
      return await observe(session, run, 'superuser');
    } finally {
      await sql`drop function blind_ddl()`.execute(session);
    }
  }

  it.each([
    // Only deletes catalog rows: the trigger's table stays locked.
    ['drops a trigger', 'drop trigger users_blind on users', /^dropped trigger users_blind on public\.users$/],
    // Only updates one: the new row version carries the transaction's xid.
    ['switches a trigger off', 'alter table users disable trigger users_blind', /^altered trigger users_blind on public\.users$/],
    // In a subtransaction (an exception block) that commits: a newer xid, still the transaction's.
    [
      'creates a table inside an exception block',
      'begin create table blind_made(x int); exception when others then null; end',
      /^created table public\.blind_made$/,
    ],
  ])('under trust superuser, names what a function that %s with counting switched off did', async (_what, body, named) => {
    await sql`create trigger users_blind after delete on users for each statement execute function pg_catalog.suppress_redundant_updates_trigger()`.execute(
      session,
    );
    try {
      const blind = await blindly(body, (trx) => sql`select blind_ddl()`.execute(trx));
      expect(summary(blind.verdict.changes)).toEqual(expect.arrayContaining([expect.stringMatching(named)]));
      expect(blind.verdict.ownWork).toBe(true);
    } finally {
      await sql`drop trigger if exists users_blind on users`.execute(session);
    }
  });

  it("takes the relfilenode baseline inside the transaction: a TRUNCATE committed by another session before BEGIN is not the script's", async () => {
    const prepared = await prepareBaseline(session);
    const other = createDb(t.url, { maxConnections: 1 });
    try {
      await sql`truncate credit_allocation cascade`.execute(other);
    } finally {
      await other.destroy();
    }
    const trx = await session.startTransaction().execute();
    try {
      const shapes = await withStorageNow(trx, prepared.shapes);
      const before = { counters: await readXactCounters(trx), shapes, sequences: await readSequencePositions(trx) };
      const after = {
        counters: await readXactCounters(trx),
        shapes: await readTableShapes(trx, new Set()),
        sequences: await readSequencePositions(trx),
      };
      expect(measureChanges(before, after, new Set()).changes['public.credit_allocation']).toBeUndefined();
      expect(shapes.get('public.credit_allocation')?.relfilenode).not.toBe(prepared.shapes.get('public.credit_allocation')?.relfilenode);
    } finally {
      await trx.rollback().execute();
    }
  });
});
