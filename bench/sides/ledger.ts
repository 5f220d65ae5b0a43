import { execa } from 'execa';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import { createDb, type Db } from '../../src/db/connection.js';
import { applySteps, planInstall } from '../../src/ledger/install.js';
import { silentLogger } from '../../src/logger.js';
import { describeFailure, runCli } from '../child.js';
import { alternate, median, progress, type SideSamples } from '../measure.js';
import { dropBenchDatabase, freshBenchDatabase } from '../data.js';
import { createWorkspace } from '../workspace.js';

/**
 * The change ledger's cost, side by side on the same data in one database: a plain table,
 * the same protected without and with kept rows, a classic row-level audit trigger (one
 * audit row per changed row) for BENCHMARKS.md, and three floors of the design, each a
 * statement trigger with transition tables, SECURITY DEFINER like the ledger's:
 * - `floor`: a body that does nothing;
 * - `least`: the least any per-statement ledger must do, count the transition table and
 *   insert one row (xid, time, role, pid, table, operation, count) into a table with no index;
 * - `copy`: `least`, and the transition table's rows copied as they are into a table of the
 *   same columns: the cheapest place to keep rows inside the database, cheaper than the JSON
 *   the issue asks for.
 * OLTP through pgbench, a 100,000-row DELETE timed in-process, and blame over 10,000 sealed
 * ledger statements through the CLI.
 */
const DB_NAME = 'safe_run_bench_ledger';
const TABLES = {
  plain: 'u_plain',
  count: 'u_count',
  keep: 'u_keep',
  audit: 'u_audit',
  floor: 'u_floor',
  least: 'u_least',
  copy: 'u_copy',
} as const;
type Kind = keyof typeof TABLES;
const BULK_ROWS = 100_000;

export interface LedgerBench {
  readonly oltpTps: Readonly<Record<Kind, number>>;
  readonly bulkDelete: readonly SideSamples[];
  readonly blameMs: number;
  readonly blameStatements: number;
}

async function createTables(db: Db): Promise<void> {
  for (const table of [...Object.values(TABLES), 'users'])
    await sql
      .raw(
        `create table ${table} (id uuid primary key default gen_random_uuid(), n int unique, email text not null,
           name text, is_active boolean not null default true, created_at timestamptz not null default now())`,
      )
      .execute(db);
  // The classic alternative: a row-level trigger that writes one audit row per changed row.
  await sql
    .raw(
      `create table audit_log (at timestamptz default now(), op text, who text, row jsonb);
       create function audit_row() returns trigger language plpgsql as $$ begin
         insert into audit_log (op, who, row) values (tg_op, session_user, to_jsonb(coalesce(old, new))); return null; end $$;
       create trigger audit_row after insert or update or delete on ${TABLES.audit} for each row execute function audit_row();`,
    )
    .execute(db);
  // The floor: what any ledger built on statement triggers with transition tables pays before its body does anything.
  await sql
    .raw(
      `create function ledger_floor() returns trigger language plpgsql security definer set search_path = pg_catalog, pg_temp
         as $$ begin return null; end $$;
       create trigger floor_insert after insert on ${TABLES.floor} referencing new table as n for each statement execute function ledger_floor();
       create trigger floor_update after update on ${TABLES.floor} referencing old table as o new table as n for each statement execute function ledger_floor();
       create trigger floor_delete after delete on ${TABLES.floor} referencing old table as o for each statement execute function ledger_floor();`,
    )
    .execute(db);
  await sql.raw(leastLedgerSql()).execute(db);
  await applySteps(
    db,
    await planInstall(
      db,
      [
        { schema: 'public', table: TABLES.count, keepRows: false },
        { schema: 'public', table: TABLES.keep, keepRows: true },
        { schema: 'public', table: 'users', keepRows: true },
      ],
      { statementText: 'text', keepRowsMax: BULK_ROWS },
    ),
    10_000,
    silentLogger,
  );
}

/** The `least` and `copy` floors: one function per event, as a function names only its event's transition tables. */
function leastLedgerSql(): string {
  const events = [
    { op: 'insert', referencing: 'new table as n', sides: ['n'] },
    { op: 'update', referencing: 'old table as o new table as n', sides: ['o', 'n'] },
    { op: 'delete', referencing: 'old table as o', sides: ['o'] },
  ];
  const parts = [
    'create table least_ledger (xid xid8, at timestamptz, who text, pid int, tbl text, op text, n bigint)',
    `create table least_rows (like ${TABLES.copy})`,
    `alter table least_rows add column side "char"`,
  ];
  for (const e of events) {
    const copy = e.sides.map((side) => `insert into public.least_rows select t.*, '${side}' from ${side} t;`).join(' ');
    parts.push(
      `create function least_${e.op}() returns trigger language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
       declare c bigint;
       begin
         select count(*) into c from ${e.sides[0]};
         insert into public.least_ledger values (pg_current_xact_id(), statement_timestamp(), session_user, pg_backend_pid(), tg_table_name, tg_op, c);
         if tg_argv[0] = 'copy' then ${copy} end if;
         return null;
       end $$`,
    );
    for (const [kind, arg] of [
      ['least', 'count'],
      ['copy', 'copy'],
    ] as const)
      parts.push(
        `create trigger least_${e.op} after ${e.op} on ${TABLES[kind]} referencing ${e.referencing}
           for each statement execute function least_${e.op}('${arg}')`,
      );
  }
  return parts.join(';\n');
}

async function fill(db: Db, table: string, rows: number): Promise<void> {
  // session_replication_role = replica: refilling is set-up, not a write to measure (ENABLE ALWAYS triggers still fire, so truncate first).
  await sql.raw(`truncate ${table}`).execute(db);
  await sql.raw(`insert into ${table} (n, email) select g, 'user' || g || '@example.com' from generate_series(1, ${rows}) g`).execute(db);
  await sql.raw(`vacuum analyze ${table}`).execute(db);
}

async function pgbenchTps(url: string, table: string, seconds: number, dir: string): Promise<number> {
  const file = path.join(dir, `${table}.pgbench`);
  writeFileSync(
    file,
    [
      '\\set id random(1, 10000)',
      `update ${table} set name = 'x' || :id where n = :id;`,
      `insert into ${table} (email) values (md5(random()::text) || '@bench');`,
      '',
    ].join('\n'),
  );
  const run = await execa('pgbench', ['-n', '-f', file, '-T', String(seconds), '-c', '2', '-j', '2', url], { reject: false });
  const match = /tps = ([0-9.]+)/.exec(String(run.stdout));
  if (run.exitCode !== 0 || !match) throw new Error(`pgbench on ${table} failed: ${String(run.stderr).slice(0, 300)}`);
  return Number(match[1]);
}

export async function measureLedger(demoUrl: string, rounds: number, quick: boolean): Promise<LedgerBench> {
  const url = await freshBenchDatabase(demoUrl, DB_NAME);
  const db = createDb(url, { maxConnections: 2 });
  const ws = await createWorkspace('ledger');
  try {
    await createTables(db);
    for (const table of Object.values(TABLES)) await fill(db, table, 10_000);

    // OLTP: pgbench rounds alternate the sides, and each side's median tps counts.
    const tps = Object.fromEntries(Object.keys(TABLES).map((k) => [k, [] as number[]])) as Record<Kind, number[]>;
    const seconds = quick ? 2 : 5;
    for (let r = 0; r < rounds; r++) {
      const order = (Object.keys(TABLES) as Kind[]).map((_, i, all) => all[(i + r) % all.length]!);
      for (const kind of order) tps[kind].push(await pgbenchTps(url, TABLES[kind], seconds, ws.dir));
      progress(`  ledger oltp: round ${r + 1}/${rounds}: ${order.map((k) => `${k} ${tps[k].at(-1)!.toFixed(0)} tps`).join(', ')}`);
    }

    // Bulk: DELETE of 100,000 rows, the table refilled (untimed) before every run.
    const bulkDelete = await alternate(
      (Object.keys(TABLES) as Kind[]).map((kind) => ({
        name: kind,
        run: async () => {
          await fill(db, TABLES[kind], BULK_ROWS);
          const started = performance.now();
          await sql.raw(`delete from ${TABLES[kind]}`).execute(db);
          return performance.now() - started;
        },
      })),
      { rounds, label: 'ledger bulk delete', warmup: false },
    );

    // Blame over 10,000 sealed statements: one statement per update on users, then a snapshot seals them.
    await fill(db, 'users', 10);
    const env = ws.env(url);
    await ws.config(url, { criticalTables: { users: { maxDropPercent: 100 } } });
    const snap = async (): Promise<void> => {
      const run = await runCli(['snapshot', '--config', ws.configFile], env, ws.dir);
      if (run.exitCode !== 0) throw new Error(describeFailure('safe-run snapshot', run));
    };
    await snap();
    await sql`do $$ begin for i in 1..10000 loop update users set name = 'v' || i where n = 1 + i % 10; end loop; end $$`.execute(db);
    await sql`delete from users where n = 1`.execute(db);
    await snap();
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from safe_run.ledger where table_name = 'users'`.execute(db);
    const blame: number[] = [];
    for (let r = 0; r < Math.min(rounds, 3); r++) {
      const run = await runCli(['blame', 'users', '--json', '--config', ws.configFile], env, ws.dir);
      if (run.exitCode !== 0) throw new Error(describeFailure('safe-run blame users', run));
      blame.push(run.wallMs);
      progress(`  blame users with ${rows[0]!.n} ledger statements: round ${r + 1}: ${run.wallMs.toFixed(0)} ms`);
    }
    return {
      oltpTps: Object.fromEntries(Object.entries(tps).map(([k, v]) => [k, median(v)])) as Record<Kind, number>,
      bulkDelete,
      blameMs: median(blame),
      blameStatements: rows[0]!.n,
    };
  } finally {
    await db.destroy();
    await ws.remove();
    await dropBenchDatabase(demoUrl, DB_NAME).catch(() => {});
  }
}
