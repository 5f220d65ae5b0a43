import { sql } from 'kysely';
import type { RunResult } from '../src/run/types.js';
import { parseJson } from './helpers/cli.js';
import { countRows } from './helpers/db.js';
import { createWorkspace, type Workspace } from './helpers/workspace.js';

/**
 * A schema shaped like a real product's, beside the demo: an extension, enums, views, a
 * materialized view, a partitioned table, a non-public schema with awkward names, and a
 * three-level ON DELETE CASCADE chain. Guards must see through all of it.
 */
async function buildProductionSchema(ws: Workspace): Promise<void> {
  await sql`
    create extension if not exists citext;
    create type plan_tier as enum ('free', 'pro', 'enterprise');
    create schema billing;
    create table billing.accounts (id bigserial primary key, email citext not null unique, tier plan_tier not null default 'free');
    create table billing.invoices (id bigserial primary key, account_id bigint not null references billing.accounts on delete cascade, total_cents int not null);
    create table billing.invoice_lines (id bigserial primary key, invoice_id bigint not null references billing.invoices on delete cascade, sku text not null);
    create table billing."Audit Trail" (id bigserial primary key, account_id bigint references billing.accounts on delete set null, note text);
    create table billing.events (id bigserial, at timestamptz not null, kind text not null) partition by range (at);
    create table billing.events_2025 partition of billing.events for values from ('2025-01-01') to ('2026-01-01');
    create table billing.events_2026 partition of billing.events for values from ('2026-01-01') to ('2027-01-01');
    create view billing.big_accounts as select a.id, count(i.id) as invoices from billing.accounts a join billing.invoices i on i.account_id = a.id group by a.id;
    create materialized view billing.revenue as select sum(total_cents) as cents from billing.invoices;
    insert into billing.accounts (email, tier) select 'a' || g || '@example.com', (array['free','pro','enterprise'])[1 + g % 3]::plan_tier from generate_series(1, 50) g;
    insert into billing.invoices (account_id, total_cents) select 1 + g % 50, g * 10 from generate_series(1, 200) g;
    insert into billing.invoice_lines (invoice_id, sku) select 1 + g % 200, 'sku-' || g from generate_series(1, 600) g;
    insert into billing."Audit Trail" (account_id, note) select 1 + g % 50, 'note' from generate_series(1, 100) g;
    insert into billing.events (at, kind) select timestamptz '2025-06-01' + g * interval '1 day', 'login' from generate_series(1, 300) g;
  `.execute(ws.t.db);
}

describe('a production-shaped schema', () => {
  let ws: Workspace;
  beforeEach(async () => {
    ws = await createWorkspace();
    await buildProductionSchema(ws);
  });
  afterEach(async () => {
    await ws.cleanup();
  });

  it('rolls back a delete that cascades three levels deep into undeclared tables, naming each', async () => {
    ws.writeScript(
      'close-free-accounts.sql',
      "-- @description Close free accounts\n-- @touches billing.accounts: delete\ndelete from billing.accounts where tier = 'free';\n",
    );
    const before = await countRows(ws.t.db, 'billing.invoice_lines');
    const result = await ws.cli(['close-free-accounts', '--json']);
    expect(result.exitCode).toBe(3);
    const json = parseJson<RunResult>(result);
    expect(json.violations.map((v) => `${v.table} ${v.rule}`).sort()).toEqual([
      'billing.Audit Trail undeclared-table',
      'billing.invoice_lines undeclared-table',
      'billing.invoices undeclared-table',
    ]);
    expect(json.changes['billing.accounts']?.deleted).toBe(16); // g % 3 = 0 for 16 of 1..50
    expect(json.changes['billing.Audit Trail']?.updated).toBeGreaterThan(0);
    expect(json.backup.tables).toEqual(['billing.Audit Trail', 'billing.accounts', 'billing.invoice_lines', 'billing.invoices']);
    expect(await countRows(ws.t.db, 'billing.invoice_lines')).toBe(before);
  });

  it('commits the same delete when the script declares the whole cascade, with exact counts per table', async () => {
    ws.writeScript(
      'close-free-accounts.sql',
      [
        '-- @description Close free accounts and everything that hangs off them',
        '-- @touches billing.accounts: delete',
        '-- @touches billing.invoices: delete',
        '-- @touches billing.invoice_lines: delete',
        '-- @touches "billing"."Audit Trail": update',
        "delete from billing.accounts where tier = 'free';",
      ].join('\n'),
    );
    const invoicesOfFree = await sql<{
      n: number;
    }>`select count(*)::int as n from billing.invoices i join billing.accounts a on a.id = i.account_id where a.tier = 'free'`.execute(
      ws.t.db,
    );
    const result = await ws.cli(['close-free-accounts', '--json']);
    expect(result.exitCode).toBe(0);
    const json = parseJson<RunResult>(result);
    expect(json.changes['billing.invoices']?.deleted).toBe(invoicesOfFree.rows[0]!.n);
    expect(json.counts.post['billing.accounts']).toBe(34);
    expect(Object.keys(json.changes).sort()).toEqual([
      'billing.Audit Trail',
      'billing.accounts',
      'billing.invoice_lines',
      'billing.invoices',
    ]);
  });

  it('sees inserts into a partition and a materialized view refresh does not count as a table change', async () => {
    ws.writeScript(
      'log-logins.sql',
      "-- @description Backfill logins\n-- @touches billing.events_2026: insert\ninsert into billing.events (at, kind) values ('2026-02-01', 'login'), ('2026-03-01', 'login');\nrefresh materialized view billing.revenue;\n",
    );
    const result = await ws.cli(['log-logins', '--json']);
    expect(result.exitCode).toBe(0);
    expect(parseJson<RunResult>(result).changes).toEqual({
      'billing.events_2026': { inserted: 2, updated: 0, deleted: 0, truncated: false },
    });
  });

  it('lets a declared partitioned table cover its partitions, limits summed over them', async () => {
    const backfill = (limit: number): string =>
      `-- @description Backfill logins\n-- @touches billing.events: insert\n-- @limit billing.events.insert ${limit}\ninsert into billing.events (at, kind) values ('2025-02-01', 'login'), ('2026-03-01', 'login');\n`;
    ws.writeScript('backfill.sql', backfill(1));
    const refused = parseJson<RunResult>(await ws.cli(['backfill', '--json']));
    expect(refused.violations).toEqual([{ table: 'billing.events', rule: 'limit-exceeded', detail: '2 row(s) inserted, limit 1' }]);
    ws.writeScript('backfill.sql', backfill(2));
    const result = await ws.cli(['backfill', '--json']);
    expect(result.exitCode).toBe(0);
    expect(Object.keys(parseJson<RunResult>(result).changes).sort()).toEqual(['billing.events_2025', 'billing.events_2026']);
  });

  it('check names an out-of-band TRUNCATE, which moves no counter', async () => {
    expect((await ws.cli(['snapshot'])).exitCode).toBe(0);
    await sql`truncate billing.invoice_lines`.execute(ws.t.db);
    const result = await ws.cli(['check', '--json']);
    expect(result.exitCode).toBe(10);
    const findings = parseJson<{ findings: { kind: string; table?: string; detail: string }[] }>(result).findings;
    expect(findings).toContainEqual(
      expect.objectContaining({ kind: 'count-changed', table: 'billing.invoice_lines', detail: expect.stringContaining('TRUNCATE') }),
    );
  });
});
