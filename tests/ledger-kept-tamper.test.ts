import { sql } from 'kysely';
import type { CheckResult } from '../src/history/check.js';
import { parseJson } from './helpers/cli.js';
import { writeAs } from './helpers/db.js';
import { createWorkspace, type Workspace } from './helpers/workspace.js';

/**
 * A sealed statement's kept rows are evidence too: whoever may write the safe_run schema can
 * forge what `recover` would put back, inline (old_rows, a statement of 100 rows or fewer) or
 * in safe_run.ledger_rows (a larger one). `check` must say so (ledger-tampered, naming the
 * statement), `verify --db` must fail, and putting the rows back must clear it. Real triggers,
 * real server, built CLI.
 */
describe('check compares the kept rows of sealed statements', () => {
  let ws: Workspace;
  beforeEach(async () => {
    ws = await createWorkspace();
  });
  afterEach(async () => {
    await ws.cleanup();
  });

  // Only the ledger's findings: the table made for the test moves the counts too (count-changed).
  const ledgerFindings = async (): Promise<{ exitCode: number; tampered: CheckResult['findings'] }> => {
    const check = await ws.cli(['check', '--json']);
    return { exitCode: check.exitCode, tampered: parseJson<CheckResult>(check).findings.filter((f) => f.kind === 'ledger-tampered') };
  };

  it('finds an edited inline row, an edited and a deleted ledger_rows row, and clears once they are put back', async () => {
    await sql
      .raw(
        "create table kept_notes (id int primary key, note text); insert into kept_notes select g, 'n' || g from generate_series(1, 150) g",
      )
      .execute(ws.t.db);
    expect((await ws.cli(['protect', 'kept_notes', '--keep-rows'])).exitCode).toBe(0);
    await writeAs(ws.t.url, 'psql', ['delete from kept_notes where id <= 2']); // 2 rows: inline
    await writeAs(ws.t.url, 'psql', ['delete from kept_notes where id > 30']); // 120 rows: safe_run.ledger_rows
    expect((await ws.cli(['snapshot'])).exitCode).toBe(0); // seals both
    const { rows } = await sql<{ id: string; inline: boolean; sealed: boolean; apart: number }>`
      select l.id::text, l.old_rows is not null as inline, l.sealed_in is not null as sealed,
             (select count(*)::int from safe_run.ledger_rows r where r.ledger_id = l.id) as apart
        from safe_run.ledger l where l.table_name = 'kept_notes' and l.operation = 'DELETE' order by l.id`.execute(ws.t.db);
    expect(rows).toEqual([
      { id: expect.any(String), inline: true, sealed: true, apart: 0 },
      { id: expect.any(String), inline: false, sealed: true, apart: 120 },
    ]);
    const [small, big] = rows.map((r) => r.id) as [string, string];
    expect((await ledgerFindings()).tampered).toEqual([]);

    const expectTampered = async (id: string): Promise<void> => {
      const found = await ledgerFindings();
      expect(found.exitCode).toBe(10);
      expect(found.tampered).toEqual([
        expect.objectContaining({ detail: expect.stringMatching(new RegExp(`kept rows of 1 sealed ledger statement.*\\(ids ${id}\\)`)) }),
      ]);
      const verify = await ws.cli(['verify', '--json']);
      expect(verify.exitCode).toBe(5);
      expect(parseJson<{ firstBad: { reason: string; detail: string } }>(verify).firstBad).toMatchObject({
        reason: 'ledger-tampered',
        detail: expect.stringContaining(`ids ${id}`),
      });
    };

    // Inline: the statement's own ledger row, whose sealed columns are unchanged.
    const { rows: original } = await sql<{ old_rows: string }>`
      select old_rows::text from safe_run.ledger where id = ${small}::int8`.execute(ws.t.db);
    await sql`update safe_run.ledger set old_rows = '[{"id": 1, "note": "n1"}, {"id": 2, "note": "forged"}]' where id = ${small}::int8`.execute(
      ws.t.db,
    );
    await expectTampered(small);
    await sql`update safe_run.ledger set old_rows = ${original[0]!.old_rows}::jsonb where id = ${small}::int8`.execute(ws.t.db);
    expect((await ledgerFindings()).tampered).toEqual([]);

    // One of 120 rows in safe_run.ledger_rows edited, then deleted.
    const one = sql`ledger_id = ${big}::int8 and "row" ->> 'id' = '31'`;
    await sql`update safe_run.ledger_rows set "row" = jsonb_set("row", '{note}', '"forged"') where ${one}`.execute(ws.t.db);
    await expectTampered(big);
    await sql`update safe_run.ledger_rows set "row" = jsonb_set("row", '{note}', '"n31"') where ${one}`.execute(ws.t.db);
    expect((await ledgerFindings()).tampered).toEqual([]);
    await sql`delete from safe_run.ledger_rows where ${one}`.execute(ws.t.db);
    await expectTampered(big);
  }, 240_000);
});
