import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import { parseJson } from './helpers/cli.js';
import { countRows } from './helpers/db.js';
import { createWorkspace, type Workspace } from './helpers/workspace.js';
import type { RunResult } from '../src/run/types.js';

/** The statement policy on a real run: refused .sql scripts never start, allowed ones run whole. */
const HEADER = '-- @description policy test\n-- @touches users: delete\n';

describe('a .sql script under the statement policy', () => {
  let ws: Workspace;
  beforeEach(async () => {
    ws = await createWorkspace();
  });
  afterEach(async () => {
    await ws.cleanup();
  });

  it.each([
    ['a $$ inside a comment', '-- costs $$5\nselect 1;\nCOMMIT; delete from users;\n-- $$\n', 3],
    ["an E'\\'' escape string", "select E'\\'';\nCOMMIT; delete from users;\nselect '';\n", 2],
  ])('refuses the COMMIT hidden after %s, before anything runs (exit 2)', async (_how, body, line) => {
    const before = await countRows(ws.t.db, 'users');
    ws.writeScript('escape.sql', HEADER + body);
    const result = await ws.cli(['escape', '--reason', 'test']);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain(`line ${line + 2}: COMMIT`);
    expect(result.stderr).toContain('safe-run runs the whole script in one transaction and commits it itself when the guards pass');
    expect(await countRows(ws.t.db, 'users')).toBe(before);
    // Judged while its backup was taken: that backup is gone, and no entry names the run.
    const backups = path.join(ws.evidenceDir, 'backups');
    expect(existsSync(backups) ? readdirSync(backups) : []).toEqual([]);
    const log = path.join(ws.evidenceDir, 'audit.jsonl');
    expect(existsSync(log) ? readFileSync(log, 'utf8') : '').not.toMatch(/"kind":"run\./);
  });

  it('runs and commits an allowed multi-statement script, one statement at a time', async () => {
    const before = await countRows(ws.t.db, 'oidc_models');
    ws.writeScript(
      'tidy.sql',
      '-- @description tidy sessions\n-- @touches oidc_models: delete, update\n' +
        "savepoint s;\nupdate oidc_models set kind = kind where kind = 'Session';\nrollback to savepoint s;\n" +
        "set local search_path = public;\nselect set_config('application_name', 'tidy; commit', true);\n" +
        "delete from oidc_models where kind = 'Session' and id like '%;%' /* ; */;\n" +
        'delete from oidc_models where expires_at < now();\n',
    );
    const result = await ws.cli(['tidy', '--json', '--reason', 'test']);
    const json = parseJson<RunResult>(result);
    expect(json.status).toBe('committed');
    const expired = await sql<{ n: number }>`select count(*)::int as n from oidc_models where expires_at < now()`.execute(ws.t.db);
    expect(expired.rows[0]?.n).toBe(0);
    expect(json.changes['public.oidc_models']?.deleted).toBe(before - (await countRows(ws.t.db, 'oidc_models')));
    expect(json.changes['public.oidc_models']?.deleted).toBeGreaterThan(0);
  });

  it('points the caret at the failing statement, not at the start of the file', async () => {
    ws.writeScript('broken.sql', HEADER + 'select 1;\nselect 2;\nselect  no_such_column from users;\n');
    const result = await ws.cli(['broken', '--json', '--reason', 'test']);
    expect(result.exitCode).toBe(1);
    const json = parseJson<RunResult & { error: { message: string; position: number } }>(result);
    expect(json.error.message).toContain(`line 5: select  no_such_column from users;\n${' '.repeat('line 5: select  '.length)}^`);
  });
});
