import { sql } from 'kysely';
import { createDb, type Db } from '../src/db/connection.js';
import type { CheckResult } from '../src/history/check.js';
import { parseJson } from './helpers/cli.js';
import { createWorkspace, type Workspace } from './helpers/workspace.js';

/**
 * `safe-run snapshot` then `safe-run check`, through the built CLI on a real database. The
 * out-of-band changes are made through plain connections, as the incident's were.
 */
type Finding = CheckResult['findings'][number] & { deltas?: { inserted: number; updated: number; deleted: number } | null };

/** A plain session, like someone's psql. Its counters reach shared stats late, so wait for them. */
async function outOfBand(url: string, statement: string, counter?: { table: string; deleted: number }): Promise<void> {
  const plain = createDb(url, { maxConnections: 1 });
  try {
    await sql.raw(statement).execute(plain);
  } finally {
    await plain.destroy();
  }
  if (counter) await waitForDeletes(url, counter.table, counter.deleted);
}

async function waitForDeletes(url: string, table: string, atLeast: number): Promise<void> {
  const db: Db = createDb(url, { maxConnections: 1 });
  try {
    for (let i = 0; i < 100; i++) {
      const { rows } = await sql<{
        n: number;
      }>`select coalesce(sum(n_tup_del), 0)::int as n from pg_stat_user_tables where relname = ${table}`.execute(db);
      if ((rows[0]?.n ?? 0) >= atLeast) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`n_tup_del of ${table} never reached ${atLeast}`);
  } finally {
    await db.destroy();
  }
}

describe('safe-run snapshot + check', () => {
  let ws: Workspace;
  beforeEach(async () => {
    ws = await createWorkspace({ criticalTables: { users: { maxDropPercent: 10 } } });
  });
  afterEach(async () => {
    await ws.cleanup();
  });

  it('has nothing to compare with before the first observation (exit 2)', async () => {
    const result = await ws.cli(['check']);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/No audit log at .* and no chain head for it in the database/);
    expect(result.stderr).toMatch(/safe-run snapshot/);
  });

  it('records a signed snapshot and finds the database clean right after it', async () => {
    const snap = await ws.cli(['snapshot', '--label', 'cron', '--json']);
    expect(snap.exitCode).toBe(0);
    const body = parseJson<{ seq: number; label: string; tables: Record<string, { rows: number; rowsKind: string }> }>(snap);
    expect(body).toMatchObject({ seq: 1, label: 'cron' });
    expect(body.tables['public.users']).toEqual({ rows: 8, rowsKind: 'exact' });

    const check = await ws.cli(['check', '--json']);
    expect(check.exitCode).toBe(0);
    expect(parseJson<CheckResult>(check)).toMatchObject({ status: 'clean', findings: [], against: { seq: 1, kind: 'snapshot' } });
    expect((await ws.cli(['verify'])).exitCode).toBe(0);
  });

  it('sees DELETE FROM users as a delete: count-changed 8 -> 0 with n_tup_del +8, and critical-empty', async () => {
    expect((await ws.cli(['snapshot'])).exitCode).toBe(0);
    await outOfBand(ws.t.url, 'delete from users', { table: 'users', deleted: 8 });

    const check = await ws.cli(['check', '--json']);
    expect(check.exitCode).toBe(10);
    const result = parseJson<CheckResult>(check);
    expect(result.status).toBe('drift');
    const users = result.findings.find((f) => f.kind === 'count-changed' && f.table === 'public.users') as Finding;
    expect(users).toMatchObject({ before: 8, after: 0, deltas: { inserted: 0, updated: 0, deleted: 8 } });
    expect(result.findings).toContainEqual(expect.objectContaining({ kind: 'critical-empty', table: 'public.users', before: 8, after: 0 }));
    // The cascade shows up too, where the rows really went.
    expect(result.findings).toContainEqual(expect.objectContaining({ kind: 'count-changed', table: 'public.credit_allocation', after: 0 }));
    expect(result.findings.some((f) => f.kind === 'db-recreated' || f.kind === 'stats-reset')).toBe(false);

    const human = await ws.cli(['check']);
    expect(human.exitCode).toBe(10);
    expect(human.stdout).toMatch(
      /count-changed-[0-9a-f]{8}\s+first seen now[^\n]*\n\s+public\.users: 8 -> 0 rows \(n_tup_ins \+0, n_tup_upd \+0, n_tup_del \+8\)/,
    );
    expect(human.stdout).toMatch(/critical-empty/);
    // ON DELETE SET NULL updated usage_events: its estimate did not move, and the finding does not call that a count change.
    expect(human.stdout).toMatch(
      /public\.usage_events: \d+ rows \(estimate\), unchanged, but the counters moved \(n_tup_ins \+0, n_tup_upd \+8/,
    );
    expect(human.stdout).toMatch(/next: safe-run blame users/);
  });

  it('reports a partial loss of a critical table beyond maxDropPercent as critical-drop', async () => {
    await ws.cli(['snapshot']);
    await outOfBand(ws.t.url, "delete from users where email like '%example.com'", { table: 'users', deleted: 3 });
    const result = parseJson<CheckResult>(await ws.cli(['check', '--json']));
    expect(result.findings).toContainEqual(expect.objectContaining({ kind: 'critical-drop', table: 'public.users', before: 8, after: 5 }));
    expect(result.findings.some((f) => f.kind === 'critical-empty')).toBe(false);
  });

  it('reports schema changes and a statistics reset', async () => {
    await ws.cli(['snapshot']);
    await outOfBand(ws.t.url, 'alter table models add column retired boolean');
    await outOfBand(ws.t.url, 'create table scratch (id int)');
    await outOfBand(ws.t.url, 'select pg_stat_reset()');
    const check = await ws.cli(['check', '--json']);
    expect(check.exitCode).toBe(10);
    const kinds = parseJson<CheckResult>(check).findings.map((f) => `${f.kind} ${f.table ?? ''}`.trim());
    expect(kinds).toEqual(expect.arrayContaining(['stats-reset', 'schema-changed public.models', 'schema-changed public.scratch']));
    expect(kinds).not.toContain('db-recreated');
  });

  it('reports triggers switched off, a grant and a new trigger made outside any run, though no row changed', async () => {
    await ws.cli(['snapshot']);
    await outOfBand(ws.t.url, 'alter table users disable trigger all');
    await outOfBand(ws.t.url, 'grant all on oidc_models to public');
    await outOfBand(ws.t.url, 'create function public.noop() returns trigger language plpgsql as $$ begin return null; end $$');
    await outOfBand(ws.t.url, 'create trigger noop after insert on models for each statement execute function public.noop()');
    const check = await ws.cli(['check', '--json']);
    expect(check.exitCode).toBe(10);
    const findings = parseJson<CheckResult>(check).findings.filter((f) => f.kind === 'schema-changed');
    expect(findings.map((f) => f.table).sort()).toEqual(['public.models', 'public.oidc_models', 'public.users']);
    expect(findings.find((f) => f.table === 'public.users')?.detail).toContain('triggers');
  });

  it('finds a delete in a table recorded by estimate through its counters, in check and in blame', async () => {
    // Statistics fresh before the snapshot and stale after the delete: only the counters can tell.
    await outOfBand(ws.t.url, 'analyze oauth_clients');
    const snap = parseJson<{ tables: Record<string, { rows: number; rowsKind: string }> }>(await ws.cli(['snapshot', '--json']));
    expect(snap.tables['public.oauth_clients']!.rowsKind).toBe('estimate');
    expect(snap.tables['public.users']!.rowsKind).toBe('exact');
    await outOfBand(ws.t.url, "delete from oauth_clients where client_id = 'cli'", { table: 'oauth_clients', deleted: 1 });

    const check = await ws.cli(['check', '--json']);
    expect(check.exitCode).toBe(10);
    const finding = parseJson<CheckResult>(check).findings.find((f) => f.table === 'public.oauth_clients') as Finding;
    expect(finding).toMatchObject({ kind: 'count-changed', rowsKind: 'estimate', deltas: { inserted: 0, updated: 0, deleted: 1 } });
    expect(finding.detail).toContain('(estimate)');

    expect((await ws.cli(['snapshot'])).exitCode).toBe(0);
    const blame = parseJson<{ changes: { counters?: { deleted: number } | null; attribution: { type: string } }[] }>(
      await ws.cli(['blame', 'oauth_clients', '--no-live', '--json']),
    );
    expect(blame.changes).toContainEqual(
      expect.objectContaining({
        counters: expect.objectContaining({ deleted: 1 }),
        attribution: expect.objectContaining({ type: 'outside' }),
      }),
    );
  });

  it('snapshot --exact counts every table; without it only critical tables and exactTables', async () => {
    ws.writeConfig({ criticalTables: { users: { maxDropPercent: 10 } }, exactTables: ['models'] });
    const kinds = async (args: string[]): Promise<Record<string, string>> => {
      const body = parseJson<{ tables: Record<string, { rowsKind: string }> }>(await ws.cli(['snapshot', '--json', ...args]));
      return Object.fromEntries(Object.entries(body.tables).map(([k, t]) => [k, t.rowsKind]));
    };
    const cheap = await kinds([]);
    expect(Object.keys(cheap).filter((k) => cheap[k] === 'exact')).toEqual(['public.models', 'public.users']);
    const all = await kinds(['--exact']);
    expect(Object.values(all).every((kind) => kind === 'exact')).toBe(true);
    const human = await ws.cli(['snapshot']);
    expect(human.stdout).toMatch(/\(2 counted exactly\)/);
    expect(human.stdout).toMatch(/~ = estimate/);
  });

  it('compares with every observation: a change stays open after a later snapshot', async () => {
    await ws.cli(['snapshot']);
    await outOfBand(ws.t.url, "delete from oauth_clients where client_id = 'cli'", { table: 'oauth_clients', deleted: 1 });
    await ws.cli(['snapshot', '--label', 'after the change']);
    const check = await ws.cli(['check', '--json']);
    expect(check.exitCode).toBe(10);
    const result = parseJson<CheckResult>(check);
    expect(result.against.seq).toBe(2);
    expect(result.findings).toContainEqual(expect.objectContaining({ kind: 'count-changed', table: 'public.oauth_clients' }));
  });
});
