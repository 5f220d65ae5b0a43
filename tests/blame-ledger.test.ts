import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import { writeAs } from './helpers/db.js';
import type { BlameResult } from '../src/blame/blame.js';
import type { CheckResult } from '../src/history/check.js';
import { parseJson } from './helpers/cli.js';
import { createWorkspace, type Workspace } from './helpers/workspace.js';

/**
 * blame answering from the sealed copies of a busy ledger: many statements behind one change
 * (grouped on a terminal, each one in --json), other tables' statements in the same copy
 * (skipped without being parsed), identifiers that JSON escapes, and a copy edited after it
 * was sealed (left out, said, and a check finding). Real server, built CLI.
 */
const sessionOf = (blame: BlameResult, before: number, after: number) => {
  const change = blame.changes.find((c) => c.before === before && c.after === after);
  return change?.attribution.type === 'session' ? change.attribution : null;
};

describe('blame from the sealed ledger', () => {
  let ws: Workspace;
  beforeEach(async () => {
    ws = await createWorkspace({ criticalTables: { users: { maxDropPercent: 50 } } });
  });
  afterEach(async () => {
    await ws.cleanup();
  });

  it('groups many statements of one change by session and operation, lists each in --json, and the verdict names the DELETE', async () => {
    expect((await ws.cli(['protect', 'users', 'oidc_models', '--keep-rows'])).exitCode).toBe(0);
    expect((await ws.cli(['snapshot'])).exitCode).toBe(0);
    // One session's loop of single-row UPDATEs: 25 statements in one transaction.
    await writeAs(ws.t.url, 'bulk-updater', [
      "do $$ begin for i in 1..25 loop update users set email = email where email = 'free.user@example.com'; end loop; end $$",
    ]);
    // Another protected table's statements share the sealed copy; blame of users must skip them.
    await writeAs(ws.t.url, 'noise', [
      "do $$ begin for i in 1..30 loop update oidc_models set uid = uid where id = 'sess-valid-pro'; end loop; end $$",
    ]);
    await writeAs(ws.t.url, 'seed-script', ["delete from users where email = 'admin.test@rephlo.ai'"]);
    expect((await ws.cli(['snapshot'])).exitCode).toBe(0);

    const json = await ws.cli(['blame', 'users', '--json']);
    expect(json.exitCode).toBe(0);
    const session = sessionOf(parseJson<BlameResult>(json), 8, 7)!;
    expect(session.statements).toHaveLength(26);
    expect(session.statements.filter((s) => s.applicationName === 'bulk-updater' && s.op === 'UPDATE')).toHaveLength(25);
    expect(session.statements.filter((s) => s.applicationName === 'seed-script')).toEqual([
      expect.objectContaining({ op: 'DELETE', rows: 1, statement: "delete from users where email = 'admin.test@rephlo.ai'" }),
    ]);

    const text = await ws.cli(['blame', 'users']);
    expect(text.stdout).toContain('26 statement(s) named by the change ledger');
    expect(text.stdout).toContain('in 2 group(s) by session and operation; each statement: --json');
    expect(text.stdout).toMatch(
      /25 UPDATE statements, 25 rows by role postgres, application "bulk-updater", client [^,]+, pid \d+, xid \d+, from /,
    );
    expect(text.stdout).toContain('DELETE 1 rows by role postgres, application "seed-script"');
    // One line for the 25 UPDATEs, not one per statement.
    expect(text.stdout.split('"bulk-updater"')).toHaveLength(2);
    expect(text.stdout).toContain('old values kept for 25 of 25 statements: safe-run recover --ledger ID for each');

    const report = await ws.cli(['report', 'users']);
    expect(report.exitCode).toBe(0);
    expect(report.stdout).toContain('the change ledger names DELETE 1 rows by role postgres, application "seed-script"');
    expect(report.stdout).toContain('(and 25 more statement(s), 2 groups by session and operation in all)');
  });

  it('finds the statements of a table whose name JSON escapes, in a copy full of other tables', async () => {
    await sql
      .raw(`create table public."Odd ""T"" \\x" (id int primary key); insert into public."Odd ""T"" \\x" select generate_series(1, 5)`)
      .execute(ws.t.db);
    expect((await ws.cli(['protect', 'public."Odd ""T"" \\x"', 'users', '--keep-rows'])).exitCode).toBe(0);
    expect((await ws.cli(['snapshot'])).exitCode).toBe(0);
    await writeAs(ws.t.url, 'noise', [
      "do $$ begin for i in 1..20 loop update users set email = email where email = 'free.user@example.com'; end loop; end $$",
    ]);
    await writeAs(ws.t.url, 'odd-writer', ['update public."Odd ""T"" \\x" set id = id + 100 where id <= 2']);
    expect((await ws.cli(['snapshot'])).exitCode).toBe(0);

    const blame = parseJson<BlameResult>(await ws.cli(['blame', 'public."Odd ""T"" \\x"', '--json']));
    expect(blame.table).toBe('public.Odd "T" \\x');
    // An UPDATE: only the table's name finds it in the copy. A new table's count is an estimate
    // (0 until analyzed); its counters show the change and the ledger names who made it.
    const change = blame.changes.find((c) => c.attribution.type === 'session');
    expect(change?.attribution.type === 'session' && change.attribution.statements).toEqual([
      expect.objectContaining({ applicationName: 'odd-writer', op: 'UPDATE', rows: 2 }),
    ]);
  });

  it('leaves out a sealed copy edited after sealing, says so, and check finds it (ledger-tampered)', async () => {
    expect((await ws.cli(['protect', 'users', '--keep-rows'])).exitCode).toBe(0);
    expect((await ws.cli(['snapshot'])).exitCode).toBe(0);
    await writeAs(ws.t.url, 'seed-script', ["delete from users where email = 'pro.user@example.com'"]);
    expect((await ws.cli(['snapshot'])).exitCode).toBe(0);
    const before = parseJson<BlameResult>(await ws.cli(['blame', 'users', '--json']));
    expect(sessionOf(before, 8, 7)!.statements).toEqual([expect.objectContaining({ applicationName: 'seed-script', op: 'DELETE' })]);

    // Framing someone else: the application name in the sealed copy is rewritten.
    const dir = path.join(ws.evidenceDir, 'ledger');
    const copy = readdirSync(dir)
      .map((f) => path.join(dir, f))
      .find((f) => !f.endsWith('.rows.jsonl') && readFileSync(f, 'utf8').includes('"seed-script"'))!;
    writeFileSync(copy, readFileSync(copy, 'utf8').replaceAll('"seed-script"', '"cron-nightly"'));

    const blame = await ws.cli(['blame', 'users', '--json']);
    expect(blame.exitCode).toBe(0);
    expect(blame.stdout).not.toContain('cron-nightly');
    expect(sessionOf(parseJson<BlameResult>(blame), 8, 7)).toBeNull();
    expect(blame.stderr).toMatch(
      /sealed copy ledger\/\S+ differs from its signed sha256 \(ledger\.seal #\d+\): its statements are left out/,
    );

    const check = await ws.cli(['check', '--json']);
    expect(check.exitCode).toBe(10);
    expect(parseJson<CheckResult>(check).findings).toContainEqual(
      expect.objectContaining({ kind: 'ledger-tampered', detail: expect.stringContaining('differs from its signed sha256') }),
    );
  });
});
