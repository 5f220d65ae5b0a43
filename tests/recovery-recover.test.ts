import { sql } from 'kysely';
import type { RecoverResult } from '../src/restore/recover.js';
import type { RunIntentBody } from '../src/records/index.js';
import { parseJson } from './helpers/cli.js';
import { countRows } from './helpers/db.js';
import { logLines } from './helpers/evidence.js';
import { createLedger, recordStatement } from './helpers/ledger.js';
import { jsonRows, rowsOf } from './helpers/rows.js';
import { createWorkspace, type Workspace } from './helpers/workspace.js';

/**
 * `safe-run recover` against a real PostgreSQL. The ledger's triggers are another branch's
 * work; here its tables are made with the fixed layout and filled the way its statement
 * triggers fill them: one row per statement, in the writer's transaction, with to_jsonb of
 * the real deleted rows (and of the SET NULL child's rows before and after).
 */
describe('safe-run recover', () => {
  let ws: Workspace;
  let before: Record<string, string[]>;
  let usersStatement: string;
  let backupRun: string;

  beforeAll(async () => {
    ws = await createWorkspace({ criticalTables: { users: { maxDropPercent: 10 } } });
    // A backup that holds users, taken before the ledger kept anything newer.
    backupRun = parseJson<{ runId: string }>(await ws.cli(['cleanup-invalid-sessions', '--json'])).runId;
    await createLedger(ws.t.db);
    before = await rowsOf(ws.t.db);
    await ws.t.db.transaction().execute(async (trx) => {
      const old = {
        users: await jsonRows(trx, 'users'),
        credit_allocation: await jsonRows(trx, 'credit_allocation'),
        subscriptions: await jsonRows(trx, 'subscriptions'),
        usage_events: await jsonRows(trx, 'usage_events'),
      };
      await sql`delete from users`.execute(trx);
      usersStatement = await recordStatement(trx, { table: 'users', operation: 'DELETE', old: old.users });
      await recordStatement(trx, { table: 'credit_allocation', operation: 'DELETE', old: old.credit_allocation });
      await recordStatement(trx, { table: 'subscriptions', operation: 'DELETE', old: old.subscriptions });
      await recordStatement(trx, {
        table: 'usage_events',
        operation: 'UPDATE',
        old: old.usage_events,
        new: await jsonRows(trx, 'usage_events'),
      });
    });
    expect(await countRows(ws.t.db, 'users')).toBe(0);
  }, 240_000);
  afterAll(async () => {
    await ws.cleanup();
  });

  it('restore --in-place says the ledger holds newer rows, and offers recover', async () => {
    const dry = await ws.cli(['restore', backupRun, '--in-place', '--table', 'users', '--dry-run']);
    expect(dry.exitCode).toBe(0);
    expect(dry.stdout).toContain(`the ledger kept ${before.users!.length} rows of public.users after this backup`);
    expect(dry.stdout).toContain('safe-run recover --table public.users --since');
    expect(await countRows(ws.t.db, 'users')).toBe(0);
  }, 240_000);

  it('--table users --since --with-dependents brings back users and the cascaded children, row by row', async () => {
    const result = await ws.cli(['recover', '--table', 'users', '--since', '1h', '--with-dependents', '--json']);
    expect(result.exitCode).toBe(0);
    const recovered = parseJson<RecoverResult>(result);
    expect(recovered.run.status).toBe('committed');
    expect(recovered.tables['public.users']).toMatchObject({ inserted: before.users!.length, skipped: 0 });
    expect(recovered.tables['public.usage_events']).toMatchObject({ relinked: before.usage_events!.length });
    expect(await rowsOf(ws.t.db)).toEqual(before);

    const intent = logLines(ws.evidenceDir)
      .map((l) => JSON.parse(l) as { kind: string; runId: string; body: RunIntentBody })
      .find((e) => e.kind === 'run.intent' && e.runId === recovered.run.runId)!;
    expect(intent.body.script).toMatchObject({ name: 'recover', kind: 'builtin' });
    expect(intent.body.args).toContain(`ledger=${usersStatement}`);
  }, 240_000);

  it('--ledger <id> again skips every row, since every key exists now', async () => {
    const again = parseJson<RecoverResult>(await ws.cli(['recover', '--ledger', usersStatement, '--json']));
    expect(again.run.exitCode).toBe(0);
    expect(again.tables['public.users']).toMatchObject({ offered: before.users!.length, inserted: 0, skipped: before.users!.length });
  }, 240_000);

  it('refuses an unknown ledger id and a --table without --since (exit 2)', async () => {
    expect((await ws.cli(['recover', '--ledger', '999999'])).exitCode).toBe(2);
    const noSince = await ws.cli(['recover', '--table', 'users']);
    expect(noSince.exitCode).toBe(2);
    expect(noSince.stderr).toContain('--since');
  }, 240_000);
});
