import { sql } from 'kysely';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createDb, type Db } from '../src/db/connection.js';
import type { BlameResult } from '../src/blame/blame.js';
import type { ProtectResult } from '../src/commands/protect.js';
import { INLINE_ROWS_MAX } from '../src/ledger/schema-sql.js';
import { keptRowsSql } from '../src/ledger/kept-rows.js';
import { parseJson } from './helpers/cli.js';
import { writeAs } from './helpers/db.js';
import { createWorkspace, type Workspace } from './helpers/workspace.js';

/**
 * The change ledger end to end: `safe-run protect` through the built CLI as the test
 * superuser, out-of-band writers on plain connections (as the incident's were), and
 * `blame` naming them from the ledger.
 */
type Ledger = { id: number; operation: string; table_name: string | null; row_count: number; rows_kept: number; rows_not_kept: number };

async function ledgerOf(ws: Workspace, op: string, table: string): Promise<Ledger[]> {
  const { rows } = await sql<Ledger>`
    select id, operation, table_name, row_count, rows_kept, rows_not_kept from safe_run.ledger
     where operation = ${op} and table_name = ${table} order by id`.execute(ws.t.db);
  return rows;
}

/** A statement's kept rows, inline in its ledger row or in ledger_rows: read as seal and recover read them. */
async function keptRows(ws: Workspace, ledgerId: number): Promise<{ side: string; row: Record<string, unknown> }[]> {
  const { rows } = await sql<{ side: string; row: Record<string, unknown> }>`
    select k.side, k.row from (${keptRowsSql(sql`l.id = ${ledgerId}`, true)}) k`.execute(ws.t.db);
  return rows;
}

/** Where a statement's kept rows are: inline in its ledger row, and in ledger_rows. */
async function keptWhere(ws: Workspace, ledgerId: number): Promise<{ inline: number; apart: number }> {
  const { rows } = await sql<{ inline: number; apart: number }>`
    select (coalesce(jsonb_array_length(l.old_rows), 0) + coalesce(jsonb_array_length(l.new_rows), 0))::int as inline,
           (select count(*) from safe_run.ledger_rows r where r.ledger_id = l.id)::int as apart
      from safe_run.ledger l where l.id = ${ledgerId}`.execute(ws.t.db);
  return rows[0]!;
}

describe('safe-run protect and the change ledger', () => {
  let ws: Workspace;
  beforeEach(async () => {
    ws = await createWorkspace({ criticalTables: { users: { maxDropPercent: 10 } } });
  });
  afterEach(async () => {
    await ws.cleanup();
  });

  it('--dry-run prints the SQL and installs nothing; a non-superuser is told to use one (exit 2)', async () => {
    const dry = await ws.cli(['protect', 'users', '--dry-run']);
    expect(dry.exitCode).toBe(0);
    expect(dry.stdout).toContain('create or replace trigger safe_run_ledger_delete after delete on "public"."users" referencing old table');
    expect(dry.stdout).toContain('create event trigger safe_run_ledger_drop_start on ddl_command_start');
    expect(dry.stdout).toContain('enable always trigger safe_run_ledger_truncate');
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_trigger where tgname like 'safe_run_ledger%'`.execute(
      ws.t.db,
    );
    expect(rows[0]!.n).toBe(0);

    await sql`create role ledger_lowly login`.execute(ws.t.db).catch(() => {});
    const url = new URL(ws.t.url);
    url.username = 'ledger_lowly';
    const denied = await ws.cli(['protect', 'users', '--db', url.href]);
    expect(denied.exitCode).toBe(2);
    expect(denied.stderr).toContain('protect needs a superuser: role "ledger_lowly"');
    expect(denied.stderr).not.toMatch(/\n\s+at /);
  });

  it('names the out-of-band DELETE FROM users: application, role, pid, xid, with the rows kept and the cascade', async () => {
    const installed = await ws.cli(['protect', 'users', 'subscriptions', 'credit_allocation', '--json']);
    expect(installed.exitCode).toBe(0);
    const result = parseJson<ProtectResult>(installed);
    expect(result.state.tables.map((t) => [t.key, t.keepRows, t.problems])).toEqual([
      ['public.credit_allocation', false, []],
      ['public.subscriptions', false, []],
      ['public.users', true, []],
    ]);
    expect((await ws.cli(['snapshot'])).exitCode).toBe(0);
    const { rows: children } = await sql<{ n: number }>`
      select (select count(*) from subscriptions)::int + (select count(*) from credit_allocation)::int as n`.execute(ws.t.db);

    const writer = await writeAs(ws.t.url, 'seed-script', ['DELETE FROM users']);

    const [stmt] = await ledgerOf(ws, 'DELETE', 'users');
    expect(stmt).toMatchObject({ row_count: 8, rows_kept: 8, rows_not_kept: 0 });
    const kept = await keptRows(ws, stmt!.id);
    expect(kept).toHaveLength(8);
    expect(kept.map((k) => k.row.email)).toContain('free.user@example.com');

    const blame = await ws.cli(['blame', 'users', '--json']);
    expect(blame.exitCode).toBe(0);
    const change = parseJson<BlameResult>(blame).changes.at(-1)!;
    expect(change).toMatchObject({ before: 8, after: 0 });
    expect(change.attribution).toMatchObject({
      type: 'session',
      statements: [
        {
          applicationName: 'seed-script',
          role: 'postgres',
          pid: writer.pid,
          xid: writer.xid,
          op: 'DELETE',
          rows: 8,
          cascaded: children[0]!.n,
          rowsKept: 8,
          statement: 'DELETE FROM users',
        },
      ],
    });
    const text = await ws.cli(['blame', 'users']);
    expect(text.stdout).toMatch(/8 -> 0 .*named by the change ledger/);
    expect(text.stdout).toContain(`DELETE 8 rows (+${children[0]!.n} cascaded) by role postgres, application "seed-script"`);
    expect(text.stdout).toContain(`rows kept: safe-run recover --ledger ${stmt!.id}`);

    const report = await ws.cli(['report', 'users']);
    expect(report.exitCode).toBe(0);
    expect(report.stdout).toContain('the change ledger names DELETE 8 rows');
  });

  it('records TRUNCATE users CASCADE with the rows, and session_replication_role = replica does not silence it', async () => {
    expect((await ws.cli(['protect'])).exitCode).toBe(0); // users: a critical table, so protected with its rows
    await writeAs(ws.t.url, 'replica-tool', [
      "set session_replication_role = 'replica'",
      "update users set name = 'x' where email = 'pro.user@example.com'",
    ]);
    const [update] = await ledgerOf(ws, 'UPDATE', 'users');
    expect(update).toMatchObject({ row_count: 1, rows_kept: 1 });
    expect((await keptRows(ws, update!.id)).map((k) => k.side).sort()).toEqual(['new', 'old']);

    await writeAs(ws.t.url, 'psql', ['TRUNCATE users CASCADE']);
    const [truncate] = await ledgerOf(ws, 'TRUNCATE', 'users');
    expect(truncate).toMatchObject({ row_count: 8, rows_kept: 8 });
    expect((await keptRows(ws, truncate!.id)).every((k) => k.side === 'old')).toBe(true);
  });

  it('keeps at most ledger.keepRowsMax rows per statement and counts the rest; fingerprint mode stores no text', async () => {
    ws.writeConfig({ ledger: { keepRowsMax: 3, statementText: 'fingerprint' } });
    expect((await ws.cli(['protect', 'users', '--keep-rows'])).exitCode).toBe(0);
    await writeAs(ws.t.url, 'psql', ["delete from users where email <> 'nobody@example.com'"]);
    const { rows } = await sql<{
      statement: string | null;
      statement_fingerprint: string;
      rows_kept: number;
      rows_not_kept: number;
      id: number;
    }>`
      select id, statement, statement_fingerprint, rows_kept, rows_not_kept from safe_run.ledger where operation = 'DELETE'`.execute(
      ws.t.db,
    );
    expect(rows[0]).toMatchObject({ statement: null, rows_kept: 3, rows_not_kept: 5 });
    expect(rows[0]!.statement_fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(await keptRows(ws, rows[0]!.id)).toHaveLength(3);
    expect(await keptWhere(ws, rows[0]!.id)).toEqual({ inline: 0, apart: 3 });
  });

  it('keeps a small statement inline in its ledger row, a larger one row by row, and a statement over the cap exactly the cap', async () => {
    const cap = INLINE_ROWS_MAX + 50;
    ws.writeConfig({ ledger: { keepRowsMax: cap } });
    // Columns named like the trigger's alias and variables (t, n, lid, kept) must not stand in for them.
    await sql
      .raw(
        `create table big (id int primary key, v text, t int, n int, lid int, kept int);
         insert into big (id, v) select g, 'v' || g from generate_series(1, 1000) g`,
      )
      .execute(ws.t.db);
    expect((await ws.cli(['protect', 'big', '--keep-rows'])).exitCode).toBe(0);

    await writeAs(ws.t.url, 'psql', ["update big set v = 'changed' where id = 1", `delete from big where id <= ${INLINE_ROWS_MAX}`]);
    await writeAs(ws.t.url, 'psql', [`delete from big where id <= ${INLINE_ROWS_MAX + 1 + 120}`, `delete from big where id <= 1000`]);
    const [update] = await ledgerOf(ws, 'UPDATE', 'big');
    const [atInline, overInline, overCap] = await ledgerOf(ws, 'DELETE', 'big');
    expect(await keptWhere(ws, update!.id)).toEqual({ inline: 2, apart: 0 });
    expect(await keptRows(ws, update!.id)).toEqual(
      expect.arrayContaining([
        { side: 'old', row: { id: 1, v: 'v1', t: null, n: null, lid: null, kept: null } },
        { side: 'new', row: { id: 1, v: 'changed', t: null, n: null, lid: null, kept: null } },
      ]),
    );
    expect(atInline).toMatchObject({ row_count: INLINE_ROWS_MAX, rows_kept: INLINE_ROWS_MAX, rows_not_kept: 0 });
    expect(await keptWhere(ws, atInline!.id)).toEqual({ inline: INLINE_ROWS_MAX, apart: 0 });
    expect(overInline).toMatchObject({ row_count: 121, rows_kept: 121, rows_not_kept: 0 });
    expect(await keptWhere(ws, overInline!.id)).toEqual({ inline: 0, apart: 121 });
    const ids = (await keptRows(ws, overInline!.id)).map((k) => k.row.id as number).sort((a, b) => a - b);
    expect(ids).toEqual(Array.from({ length: 121 }, (_, i) => INLINE_ROWS_MAX + 1 + i));
    const rest = 1000 - INLINE_ROWS_MAX - 121;
    expect(overCap).toMatchObject({ row_count: rest, rows_kept: cap, rows_not_kept: rest - cap });
    expect(await keptWhere(ws, overCap!.id)).toEqual({ inline: 0, apart: cap });
  });

  it('DROP TABLE and DROP SCHEMA ... CASCADE are recorded by the event triggers, rows kept; unusual identifiers work', async () => {
    await sql
      .raw(
        `
      create schema "Odd Schema";
      create table "Odd Schema"."Mixed ""Case"" T" (id int primary key, "Note Text" text);
      insert into "Odd Schema"."Mixed ""Case"" T" select g, 'n' || g from generate_series(1, 5) g;
      create table public."Archive" (id int);
      insert into public."Archive" values (1), (2);`,
      )
      .execute(ws.t.db);
    const install = await ws.cli(['protect', '"Odd Schema"."Mixed ""Case"" T"', 'public.Archive', 'users', '--keep-rows']);
    expect(install.exitCode).toBe(0);

    await writeAs(ws.t.url, 'oddity', [`update "Odd Schema"."Mixed ""Case"" T" set "Note Text" = 'changed' where id <= 2`]);
    expect(await ledgerOf(ws, 'UPDATE', 'Mixed "Case" T')).toEqual([expect.objectContaining({ row_count: 2, rows_kept: 2 })]);

    // A DROP TABLE that names users only in passing must not leave a DROP of users behind.
    await writeAs(ws.t.url, 'migrate', ['DROP TABLE "Archive"']);
    const [archive] = await ledgerOf(ws, 'DROP', 'Archive');
    expect(archive).toMatchObject({ row_count: 2, rows_kept: 2 });
    expect(await ledgerOf(ws, 'DROP', 'users')).toEqual([]);

    await sql.raw('create table "Odd Schema"."Other ""One""" as select 1 as id').execute(ws.t.db);
    expect((await ws.cli(['protect', '"Odd Schema"."Other ""One"""', '--keep-rows'])).exitCode).toBe(0);
    await writeAs(ws.t.url, 'psql', ['DROP TABLE "Odd Schema"."Other ""One"""']);
    expect(await ledgerOf(ws, 'DROP', 'Other "One"')).toEqual([expect.objectContaining({ row_count: 1, rows_kept: 1 })]);

    await writeAs(ws.t.url, 'prisma-migrate-reset', ['DROP SCHEMA "Odd Schema" CASCADE']);
    const [dropped] = await ledgerOf(ws, 'DROP', 'Mixed "Case" T');
    expect(dropped).toMatchObject({ row_count: 5, rows_kept: 5 });
    expect((await keptRows(ws, dropped!.id)).map((k) => k.row['Note Text']).sort()).toEqual(['changed', 'changed', 'n3', 'n4', 'n5']);
    const { rows: schemaDrop } = await sql<{ object_identity: string }>`
      select object_identity from safe_run.ledger where operation = 'DROP' and table_name is null`.execute(ws.t.db);
    expect(schemaDrop.map((r) => r.object_identity)).toContain('"Odd Schema"');
  });

  it('records writes through a partitioned parent once, and direct writes to a partition too', async () => {
    await sql
      .raw(
        `
      create table ev (id int, at date) partition by range (at);
      create table ev_1 partition of ev for values from ('2025-01-01') to ('2025-02-01');
      create table ev_2 partition of ev for values from ('2025-02-01') to ('2025-03-01');`,
      )
      .execute(ws.t.db);
    expect((await ws.cli(['protect', 'ev', '--keep-rows'])).exitCode).toBe(0);
    await writeAs(ws.t.url, 'psql', [
      "insert into ev values (1, '2025-01-05'), (2, '2025-02-05')",
      "insert into ev_2 values (3, '2025-02-07')",
    ]);
    expect(await ledgerOf(ws, 'INSERT', 'ev')).toEqual([expect.objectContaining({ row_count: 2, rows_kept: 2 })]);
    expect(await ledgerOf(ws, 'INSERT', 'ev_2')).toEqual([expect.objectContaining({ row_count: 1, rows_kept: 1 })]);
    await writeAs(ws.t.url, 'psql', ['truncate ev']);
    // The parent holds no rows of its own: each partition records what it lost.
    expect(await ledgerOf(ws, 'TRUNCATE', 'ev')).toEqual([]);
    expect((await ledgerOf(ws, 'TRUNCATE', 'ev_2'))[0]).toMatchObject({ row_count: 2, rows_kept: 2 });
  });

  it('DROP TABLE of one partition, or of one detached since, keeps its rows; a dropped parent is copied once', async () => {
    await sql
      .raw(
        `create table ev (id int, region text, primary key (id, region)) partition by list (region);
         create table ev_eu partition of ev for values in ('eu');
         create table ev_us partition of ev for values in ('us');
         create table ev_as partition of ev for values in ('as');
         insert into ev select g, (array['eu', 'us', 'as'])[1 + g % 3] from generate_series(1, 30) g;`,
      )
      .execute(ws.t.db);
    expect((await ws.cli(['protect', 'ev', '--keep-rows'])).exitCode).toBe(0);
    // The parent's name is not in the statement: only the partition's own triggers say it is watched.
    await writeAs(ws.t.url, 'archiver', ['drop table ev_eu']);
    const [eu] = await ledgerOf(ws, 'DROP', 'ev_eu');
    expect(eu).toMatchObject({ row_count: 10, rows_kept: 10 });
    // The partition made again, empty: it is protected as it is made, and recover puts its rows back.
    await sql`create table ev_eu partition of ev for values in ('eu')`.execute(ws.t.db);
    const back = await ws.cli(['recover', '--ledger', String(eu!.id)]);
    expect({ exit: back.exitCode, stderr: back.stderr }).toEqual({ exit: 0, stderr: expect.any(String) });
    const { rows } = await sql<{ ids: number[] }>`select array_agg(id order by id) as ids from ev_eu`.execute(ws.t.db);
    expect(rows[0]!.ids).toEqual(Array.from({ length: 10 }, (_, i) => 3 * i + 3));

    await writeAs(ws.t.url, 'archiver', ['alter table ev detach partition ev_us', 'drop table ev_us']);
    expect((await ledgerOf(ws, 'DROP', 'ev_us'))[0]).toMatchObject({ row_count: 10, rows_kept: 10 });
    await writeAs(ws.t.url, 'archiver', ['drop table ev']);
    expect((await ledgerOf(ws, 'DROP', 'ev'))[0]).toMatchObject({ row_count: 20, rows_kept: 20 });
    // Its partitions' rows are in the parent's copy, not copied a second time.
    expect((await ledgerOf(ws, 'DROP', 'ev_as'))[0]).toMatchObject({ row_count: 0, rows_kept: 0 });
  });

  it('DROP TABLE ... CASCADE of an inheritance parent that is not protected keeps the rows of its protected child', async () => {
    await sql
      .raw(
        `create table legacy_base (id int, v text);
         create table legacy_2019 (extra text) inherits (legacy_base);
         insert into legacy_2019 values (1, 'a', 'x'), (2, 'b', 'y');`,
      )
      .execute(ws.t.db);
    expect((await ws.cli(['protect', 'legacy_2019', '--keep-rows'])).exitCode).toBe(0);
    await writeAs(ws.t.url, 'cleanup', ['drop table legacy_base cascade']);
    const [dropped] = await ledgerOf(ws, 'DROP', 'legacy_2019');
    expect(dropped).toMatchObject({ row_count: 2, rows_kept: 2 });
    expect((await keptRows(ws, dropped!.id)).map((k) => k.row.extra).sort()).toEqual(['x', 'y']);
  });

  it('DROP TYPE ... CASCADE of the type a protected table is made OF keeps its rows', async () => {
    await sql
      .raw(
        `create type "Contact Card" as (name text, phone text);
         create table cards of "Contact Card"; insert into cards values ('a', '1'), ('b', '2'), ('c', '3');`,
      )
      .execute(ws.t.db);
    expect((await ws.cli(['protect', 'cards', '--keep-rows'])).exitCode).toBe(0);
    await writeAs(ws.t.url, 'cleanup', ['drop type "Contact Card" cascade']);
    expect((await ledgerOf(ws, 'DROP', 'cards'))[0]).toMatchObject({ row_count: 3, rows_kept: 3 });
  });

  it('a protected table renamed or moved away, then dropped under its new name, keeps its rows', async () => {
    await sql
      .raw(
        `create schema attic;
         create table ledger_renamed (id int primary key); insert into ledger_renamed select generate_series(1, 3);
         create table ledger_moved (id int primary key); insert into ledger_moved select generate_series(1, 4);`,
      )
      .execute(ws.t.db);
    expect((await ws.cli(['protect', 'ledger_renamed', 'ledger_moved', '--keep-rows'])).exitCode).toBe(0);
    await writeAs(ws.t.url, 'tidy', ['alter table ledger_renamed rename to old_stuff', 'drop table old_stuff']);
    await writeAs(ws.t.url, 'tidy', ['alter table ledger_moved set schema attic', 'drop schema attic cascade']);
    expect((await ledgerOf(ws, 'DROP', 'old_stuff'))[0]).toMatchObject({ row_count: 3, rows_kept: 3 });
    expect((await ledgerOf(ws, 'DROP', 'ledger_moved'))[0]).toMatchObject({ row_count: 4, rows_kept: 4 });
  });

  it('a partition made or attached after protect gets the ledger triggers: writes straight to it are named', async () => {
    await sql
      .raw(
        `create table ev (id int, region text, sub text, primary key (id, region, sub)) partition by list (region);
         create table ev_eu partition of ev for values in ('eu');`,
      )
      .execute(ws.t.db);
    expect((await ws.cli(['protect', 'ev', '--keep-rows'])).exitCode).toBe(0);
    // What a partition scheduler does each month; and a partitioned table attached with its own partition.
    await writeAs(ws.t.url, 'partman', [
      "create table ev_us partition of ev for values in ('us')",
      'create table ev_ap (id int not null, region text not null, sub text not null) partition by list (sub)',
      "create table ev_ap_1 partition of ev_ap for values in ('1')",
      "alter table ev attach partition ev_ap for values in ('ap')",
    ]);
    await writeAs(ws.t.url, 'loader', ["insert into ev_us values (1, 'us', '0')", "insert into ev_ap_1 values (2, 'ap', '1')"]);
    for (const table of ['ev_us', 'ev_ap_1'])
      expect(await ledgerOf(ws, 'INSERT', table)).toEqual([expect.objectContaining({ row_count: 1, rows_kept: 1 })]);
    const { rows } = await sql<{ rel: string; n: number; enabled: string }>`
      select tgrelid::regclass::text as rel, count(*)::int as n, string_agg(distinct tgenabled::text, '') as enabled
        from pg_trigger where tgname like 'safe\_run\_ledger\_%' group by 1 order by 1`.execute(ws.t.db);
    expect(rows.filter((r) => r.rel.startsWith('ev'))).toEqual(
      ['ev', 'ev_ap', 'ev_ap_1', 'ev_eu', 'ev_us'].map((rel) => ({ rel, n: 4, enabled: 'A' })),
    );
    const doctor = parseJson<{ checks: { name: string; detail: string }[] }>(await ws.cli(['doctor', '--json']));
    // Only the critical users table, never protected in this test, is missing.
    expect(doctor.checks.find((c) => c.name === 'ledger')!.detail).not.toMatch(/ev\w*: safe_run_ledger/);
    expect(doctor.checks.find((c) => c.name === 'ledger')!.detail).toContain('critical table public.users');
  });

  it('DROP OWNED BY the owner of a protected table, by name or as CURRENT_USER after SET ROLE, keeps its rows', async () => {
    const roles = ['owner_a', 'owner_b'].map((r) => `${r}_${process.pid}`);
    await sql
      .raw(
        roles
          .map(
            (role, i) =>
              `create role ${role}; create table owned_${i} (id int primary key); alter table owned_${i} owner to ${role};
               insert into owned_${i} select generate_series(1, ${5 + i})`,
          )
          .join(';'),
      )
      .execute(ws.t.db);
    try {
      expect((await ws.cli(['protect', 'owned_0', 'owned_1', '--keep-rows'])).exitCode).toBe(0);
      const byName = await writeAs(ws.t.url, 'teardown', [`drop owned by ${roles[0]}`]);
      const asRole = await writeAs(ws.t.url, 'teardown', [`set role ${roles[1]}`, 'drop owned by current_user']);
      const { rows } = await sql<{ table_name: string; xid: string; row_count: number; rows_kept: number }>`
        select table_name, xid::text, row_count::int, rows_kept::int from safe_run.ledger
         where operation = 'DROP' and table_name like 'owned\_%' order by table_name`.execute(ws.t.db);
      expect(rows).toEqual([
        { table_name: 'owned_0', xid: byName.xid, row_count: 5, rows_kept: 5 },
        { table_name: 'owned_1', xid: asRole.xid, row_count: 6, rows_kept: 6 },
      ]);
      // No candidate is left pending: the drops were confirmed.
      const { rows: pending } = await sql<{ n: number }>`select count(*)::int as n from safe_run.ledger where pending_drop`.execute(
        ws.t.db,
      );
      expect(pending[0]!.n).toBe(0);
    } finally {
      await sql.raw(roles.map((r) => `drop owned by ${r}; drop role ${r}`).join(';')).execute(ws.t.db);
    }
  });

  it('seals the rows kept by a ledger laid out before the inline columns', async () => {
    await sql
      .raw(`create table old_layout (id int primary key, v text); insert into old_layout select g, 'v' || g from generate_series(1, 150) g`)
      .execute(ws.t.db);
    expect((await ws.cli(['protect', 'old_layout', '--keep-rows'])).exitCode).toBe(0);
    // More rows than fit inline: kept in ledger_rows, as every statement was before the inline columns.
    await writeAs(ws.t.url, 'psql', ['delete from old_layout']);
    await sql`alter table safe_run.ledger drop column old_rows, drop column new_rows`.execute(ws.t.db);
    const [deleted] = await ledgerOf(ws, 'DELETE', 'old_layout');
    expect((await ws.cli(['snapshot'])).exitCode).toBe(0);
    const { rows } = await sql<{
      sealed: boolean;
    }>`select sealed_in is not null as sealed from safe_run.ledger where id = ${deleted!.id}`.execute(ws.t.db);
    expect(rows[0]!.sealed).toBe(true);
    const dir = path.join(ws.evidenceDir, 'ledger');
    const sealedRows = readdirSync(dir)
      .filter((f) => f.endsWith('.rows.jsonl'))
      .flatMap((f) => readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean))
      .map((line) => JSON.parse(line) as { ledger_id: number; row: { id: number } })
      .filter((r) => r.ledger_id === Number(deleted!.id));
    expect(sealedRows.map((r) => r.row.id).sort((a, b) => a - b)).toEqual(Array.from({ length: 150 }, (_, i) => i + 1));
  });

  it('--remove drops the triggers and keeps the recorded statements', async () => {
    expect((await ws.cli(['protect', 'users'])).exitCode).toBe(0);
    await writeAs(ws.t.url, 'psql', ["delete from users where email = 'free.user@example.com'"]);
    const removed = await ws.cli(['protect', '--remove', '--json']);
    expect(removed.exitCode).toBe(0);
    expect(parseJson<ProtectResult>(removed).state.tables).toEqual([]);
    const { rows } = await sql<{ n: number }>`
      select (select count(*) from pg_trigger where tgname like 'safe_run_ledger%')::int
           + (select count(*) from pg_event_trigger where evtname like 'safe_run_ledger%')::int as n`.execute(ws.t.db);
    expect(rows[0]!.n).toBe(0);
    expect(await ledgerOf(ws, 'DELETE', 'users')).toHaveLength(1);
  });

  it('names each session with its own backend start, read once per session; an older layout loses its per-row check', async () => {
    // An install from before: ledger_rows with a foreign key and a B-tree entry per kept row.
    await sql
      .raw(
        `create schema if not exists safe_run;
         create table safe_run.ledger (id bigint generated always as identity primary key, xid xid8 not null,
           statement_at timestamptz not null, recorded_at timestamptz not null, session_role text not null, outer_role text,
           application_name text, client_addr inet, backend_pid int not null, backend_start timestamptz, table_schema text,
           table_name text, operation text not null, object_identity text, row_count bigint not null default 0, statement text,
           statement_fingerprint text, rows_kept bigint not null default 0, rows_not_kept bigint not null default 0,
           sealed_in bigint, pending_drop boolean not null default false);
         create table safe_run.ledger_rows (ledger_id bigint not null references safe_run.ledger(id),
           side text not null check (side in ('old', 'new')), row jsonb not null);
         create index ledger_rows_ledger_id on safe_run.ledger_rows (ledger_id);
         insert into safe_run.ledger (xid, statement_at, recorded_at, session_role, backend_pid, table_schema, table_name,
           operation, row_count, rows_kept)
         values (pg_current_xact_id(), now(), now(), 'old', 1, 'public', 'users', 'DELETE', 1, 1);
         insert into safe_run.ledger_rows select id, 'old', '{"email": "kept.before@example.com"}' from safe_run.ledger;`,
      )
      .execute(ws.t.db);
    expect((await ws.cli(['protect', 'users', '--keep-rows'])).exitCode).toBe(0);
    // Brought to the new layout, its old kept rows still read; new small statements keep theirs inline.
    const [before] = await ledgerOf(ws, 'DELETE', 'users');
    expect(await keptRows(ws, before!.id)).toEqual([{ side: 'old', row: { email: 'kept.before@example.com' } }]);
    const { rows: layout } = await sql<{ fks: number; btrees: number }>`
      select (select count(*) from pg_constraint where conrelid = 'safe_run.ledger_rows'::regclass and contype = 'f')::int as fks,
             (select count(*) from pg_index i join pg_class c on c.oid = i.indexrelid join pg_am a on a.oid = c.relam
               where i.indrelid = 'safe_run.ledger_rows'::regclass and a.amname = 'btree')::int as btrees`.execute(ws.t.db);
    expect(layout[0]).toEqual({ fks: 0, btrees: 0 });

    const sessionStart = async (db: Db): Promise<string> => {
      const { rows } = await sql<{ at: string }>`
        select backend_start::text as at from pg_stat_activity where pid = pg_backend_pid()`.execute(db);
      return rows[0]!.at;
    };
    const one = createDb(ws.t.url, { applicationName: 'one', maxConnections: 1 });
    const two = createDb(ws.t.url, { applicationName: 'two', maxConnections: 1 });
    try {
      await sql`update users set name = 'a' where email = 'pro.user@example.com'`.execute(one);
      await sql`update users set name = 'b' where email = 'pro.user@example.com'`.execute(one);
      await sql`update users set name = 'c' where email = 'pro.user@example.com'`.execute(two);
      const { rows } = await sql<{ application_name: string; backend_start: string }>`
        select application_name, backend_start::text from safe_run.ledger where operation = 'UPDATE' order by id`.execute(ws.t.db);
      const [a, b] = [await sessionStart(one), await sessionStart(two)];
      const [first] = await ledgerOf(ws, 'UPDATE', 'users');
      expect(await keptWhere(ws, first!.id)).toEqual({ inline: 2, apart: 0 });
      expect(rows).toEqual([
        { application_name: 'one', backend_start: a },
        { application_name: 'one', backend_start: a },
        { application_name: 'two', backend_start: b },
      ]);
      // Kept by the session after its first write: later statements read no backend list.
      const { rows: kept } = await sql<{ at: string }>`
        select current_setting('safe_run.backend_start')::timestamptz::text as at`.execute(one);
      expect(kept[0]!.at).toBe(a);
    } finally {
      await one.destroy();
      await two.destroy();
    }
  });
});
