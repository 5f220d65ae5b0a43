import { sql } from 'kysely';
import { rules, runJson, sqlScript } from './helpers/attacks.js';
import { createWorkspace, type Workspace } from './helpers/workspace.js';

/**
 * A guarded run's two witnesses of its writes to a protected table: the statistics counters
 * the guard measures and the ledger's statements. Agreeing, the run commits with both in its
 * outcome; disagreeing, neither proves what the run did, so it does not commit. Real
 * server, built CLI.
 */
describe('the ledger cross-check of a guarded run', () => {
  let ws: Workspace;
  beforeEach(async () => {
    ws = await createWorkspace();
    expect((await ws.cli(['protect', 'oidc_models'])).exitCode).toBe(0);
  });
  afterEach(async () => {
    await ws.cleanup();
  });

  const sessions = async (): Promise<number> =>
    (await sql<{ n: number }>`select count(*)::int as n from oidc_models where kind = 'Session'`.execute(ws.t.db)).rows[0]!.n;

  it('refuses a run whose witnesses disagree: a savepoint rolled back, counted by the counters, not by the ledger', async () => {
    const before = await sessions();
    ws.writeScript(
      'undone.sql',
      sqlScript(
        "delete from oidc_models where id = 'sess-valid-pro';\n" +
          "savepoint s;\ndelete from oidc_models where kind = 'Session';\nrollback to savepoint s;\n",
      ),
    );
    const run = runJson(await ws.cli(['undone', '--json']));
    expect({ exit: run.exitCode, status: run.status }).toEqual({ exit: 3, status: 'guard-violation' });
    expect(rules(run)).toContain('ledger-disagrees');
    const disagreement = run.violations.find((v) => v.rule === 'ledger-disagrees')!;
    expect(disagreement).toMatchObject({ table: 'public.oidc_models' });
    expect(disagreement.detail).toMatch(/deleted \d+ measured, 1 in the ledger/);
    // Nothing committed: not even the first, agreed delete.
    expect(await sessions()).toBe(before);
  });

  it('commits a run whose witnesses agree', async () => {
    ws.writeScript('one.sql', sqlScript("delete from oidc_models where id = 'sess-valid-pro';"));
    const run = runJson(await ws.cli(['one', '--json']));
    expect({ exit: run.exitCode, violations: run.violations }).toEqual({ exit: 0, violations: [] });
  });
});
