import { sql } from 'kysely';
import { parseJson } from './helpers/cli.js';
import { countRows } from './helpers/db.js';
import { createWorkspace, type Workspace } from './helpers/workspace.js';
import type { RunResult } from '../src/run/types.js';

/**
 * Work that PostgreSQL defers to COMMIT would happen after every measurement. A deferred
 * constraint trigger already in the database (nothing the script declares or creates) is
 * made to fire before the runner measures, so what it does is counted and judged.
 */
describe('deferred work inside a guarded run', () => {
  let ws: Workspace;
  beforeEach(async () => {
    ws = await createWorkspace({ criticalTables: { users: { maxDropPercent: 10 } } });
    await sql`
      create function public.purge_users_later() returns trigger language plpgsql as $$
      begin delete from public.users where email like '%example.com'; return null; end $$`.execute(ws.t.db);
    await sql`
      create constraint trigger purge_users_at_commit after delete on public.oidc_models
      deferrable initially deferred for each row execute function public.purge_users_later()`.execute(ws.t.db);
  });
  afterEach(async () => {
    await ws.cleanup();
  });

  it('counts what a deferred constraint trigger does, and rolls back its undeclared deletes', async () => {
    const users = await countRows(ws.t.db, 'users');
    const result = await ws.cli(['cleanup-invalid-sessions', '--json']);
    expect(result.exitCode).toBe(3);
    const json = parseJson<RunResult>(result);
    expect(json.changes['public.users']?.deleted).toBeGreaterThan(0);
    expect(json.violations.map((v) => `${v.table}:${v.rule}`)).toContain('public.users:undeclared-table');
    expect(await countRows(ws.t.db, 'users')).toBe(users);
  });
});
