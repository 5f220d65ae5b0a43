import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { EXPECTED_CLEANUP } from '../demo/seed.js';
import { loadConfig } from '../src/config/load.js';
import { createDb } from '../src/db/connection.js';
import { silentLogger, type Logger } from '../src/logger.js';
import { withTarget } from '../src/db/target.js';
import { runGuarded } from '../src/run/pipeline.js';
import type { RunResult } from '../src/run/types.js';
import { BUNDLE_DIR } from '../src/own-build.js';
import { directGate } from '../src/script/gate.js';
import { loadScriptByName, loadScriptFile } from '../src/script/load.js';
import type { ListedScript } from '../src/commands/list.js';
import { parseJson, runCli } from './helpers/cli.js';
import { countRows, createTestDatabase } from './helpers/db.js';
import { createWorkspace, type Workspace } from './helpers/workspace.js';
import { waitFor } from './helpers/attacks.js';
import { scriptChildren } from './helpers/processes.js';

/**
 * A TypeScript script runs in its own child and reaches the database only through the
 * runner's gate. Each test is an attack a script could try against the judge, run through
 * the built CLI on a real PostgreSQL.
 */
const script = (name: string, body: string, declarations = "touches: { oidc_models: ['delete'] },"): string => `
import { defineScript, sql } from 'safe-run';
import * as fs from 'node:fs';
import * as cp from 'node:child_process';
import { Worker } from 'node:worker_threads';
export default defineScript({
  name: '${name}',
  description: 'an attack on the runner',
  ${declarations}
  async run({ db, args }) { ${body} },
});
`;

const DELETE_A_SESSION = "await sql`delete from oidc_models where id = 'sess-valid-pro'`.execute(db);";

describe('a TypeScript script in its child', () => {
  let ws: Workspace;
  beforeEach(async () => {
    ws = await createWorkspace({ backup: { scope: 'none' } });
  });
  afterEach(async () => {
    await ws.cleanup();
  });

  const run = async (name: string, args: readonly string[] = []): Promise<RunResult> => {
    const result = await ws.cli([name, '--json', ...(args.length ? ['--', ...args] : [])]);
    return parseJson<RunResult>(result);
  };

  it('cannot blind the judge by patching prototypes: the real deletes are measured and rolled back', async () => {
    ws.writeScript(
      'blind.ts',
      script(
        'blind',
        `await sql\`delete from users\`.execute(db);
        const zero = async () => ({ rows: [], numAffectedRows: 0n });
        for (let p = Object.getPrototypeOf(db.getExecutor()); p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
          for (const k of Object.getOwnPropertyNames(p)) if (k !== 'constructor') try { p[k] = zero; } catch {}
        }
        try { const pg = await import('pg'); pg.default.Client.prototype.query = zero; } catch {}
        Object.defineProperty(Object.prototype, 'n_tup_del', { get: () => 0, set() {}, configurable: true });
        Object.prototype.toJSON = function () { return {}; };
        Array.prototype.map = function () { return []; };
        JSON.stringify = () => '{}';`,
      ),
    );
    const json = await run('blind');
    expect(json.exitCode).toBe(3);
    expect(json.changes['public.users']?.deleted).toBe(8);
    expect(json.violations.map((v) => v.table)).toContain('public.users');
    expect(await countRows(ws.t.db, 'users')).toBe(8);
  });

  it.each([
    ['the signing key', (w: Workspace) => w.signingKey],
    ['the config file', (w: Workspace) => path.join(w.cwd, 'safe-run.config.json')],
    ['~/.pgpass', () => path.join(os.homedir(), '.pgpass')],
  ])('cannot read %s', async (_what, target) => {
    const file = target(ws);
    const before = await countRows(ws.t.db, 'oidc_models');
    ws.writeScript('reader.ts', script('reader', `${DELETE_A_SESSION} return fs.readFileSync(args[0], 'utf8').length;`));
    const json = await run('reader', [file]);
    expect(json.exitCode).toBe(1);
    expect(json.status).toBe('failed');
    expect(json.error?.message).toContain(file);
    expect(json.error?.message).toMatch(/restricted|denied/);
    expect(await countRows(ws.t.db, 'oidc_models')).toBe(before);
  });

  it.each([
    ['spawn', "await new Promise((ok, ko) => { const c = cp.spawn('id'); c.on('error', ko); c.on('exit', ok); });"],
    ['execSync', "cp.execSync('id');"],
    ['a worker thread', "new Worker('1', { eval: true });"],
    ['an addon', "process.dlopen({ exports: {} }, '/nonexistent/addon.node');"],
  ])('cannot start %s', async (_what, body) => {
    ws.writeScript('escape.ts', script('escape', `${DELETE_A_SESSION} ${body}`));
    const before = await countRows(ws.t.db, 'oidc_models');
    const json = await run('escape');
    expect(json.exitCode).toBe(1);
    expect(json.error?.message).toMatch(/restricted|disabled/);
    expect(await countRows(ws.t.db, 'oidc_models')).toBe(before);
  });

  it('sees no database URL, PG*, SAFE_RUN_* or NODE_OPTIONS in its environment', async () => {
    ws.writeScript('env.ts', script('env', 'return Object.keys(process.env);'));
    const result = await runCli(['env', '--json'], {
      cwd: ws.cwd,
      env: { ...ws.env, PGPASSWORD: 'secret', PGUSER: 'postgres', NODE_OPTIONS: '--no-deprecation' },
    });
    const json = parseJson<RunResult>(result);
    expect(json.exitCode).toBe(0);
    const keys = json.scriptOutput as string[];
    expect(keys.filter((k) => /^(DATABASE_URL|PG|SAFE_RUN_|NODE_OPTIONS)/.test(k))).toEqual([]);
  });

  it.each([
    ['exits mid-script', 'process.exit(0);', /exited with code 0 before the script finished/],
    ['throws', "throw new Error('boom in the script');", /boom in the script/],
    ['opens its own transaction', 'await db.transaction().execute(async () => {});', /runner owns the transaction/],
  ])('is rolled back and reported when it %s', async (_what, body, message) => {
    ws.writeScript('ends.ts', script('ends', `${DELETE_A_SESSION} ${body}`));
    const before = await countRows(ws.t.db, 'oidc_models');
    const json = await run('ends');
    expect(json.exitCode).toBe(1);
    expect(json.status).toBe('failed');
    expect(json.error?.message).toMatch(message);
    expect(await countRows(ws.t.db, 'oidc_models')).toBe(before);
  });

  it('keeps PostgreSQL error fields across the process boundary', async () => {
    ws.writeScript('bad-sql.ts', script('bad-sql', 'await sql`select * from no_such_table`.execute(db);'));
    const json = await run('bad-sql');
    expect(json.exitCode).toBe(1);
    expect(json.error).toMatchObject({ code: '42P01', position: 15 });
  });

  it("imports kysely and kysely/helpers/postgres itself, beside safe-run's sql, all one copy with the child's db", async () => {
    ws.writeScript(
      'helpers.ts',
      `
import { defineScript, sql as safeRunSql } from 'safe-run';
import { Kysely, sql } from 'kysely';
import { jsonArrayFrom } from 'kysely/helpers/postgres';
export default defineScript({
  name: 'helpers',
  description: 'test',
  touches: { oidc_models: ['delete'] },
  async run({ db }) {
    const [row] = await db
      .selectNoFrom((eb) => [jsonArrayFrom(eb.selectFrom('users').select('email').orderBy('email').limit(2)).as('emails')])
      .execute();
    await sql\`delete from oidc_models where id = 'sess-valid-pro'\`.execute(db);
    return { emails: row.emails.length, oneKysely: db instanceof Kysely, oneSql: sql === safeRunSql };
  },
});
`,
    );
    const json = await run('helpers');
    expect({ exit: json.exitCode, output: json.scriptOutput }).toEqual({ exit: 0, output: { emails: 2, oneKysely: true, oneSql: true } });
    expect(json.changes['public.oidc_models']).toMatchObject({ deleted: 1 });
  });

  it('gets every row and value the statement returned, of every type (int8 digit for digit, as Kysely gives it), and the rows a DELETE affected', async () => {
    ws.writeScript(
      'types.ts',
      script(
        'types',
        `const { rows } = await sql\`select g as i, 9007199254740993::int8 as big, 1.5::numeric as n, g % 2 = 0 as b, null::text as nul,
                  '2026-01-02T03:04:05Z'::timestamptz as ts, '\\\\x0102'::bytea as bin, '{"a": [1, 2]}'::jsonb as j, array[g, 2] as arr,
                  'x' as dup, 'y' as dup
             from generate_series(1, 3) g order by g\`.execute(db);
         const none = await sql\`select 1 as x where false\`.execute(db);
         const deleted = await db.deleteFrom('oidc_models').where('id', '=', 'sess-valid-pro').executeTakeFirst();
         return {
           none: none.rows.length,
           deleted: String(deleted.numDeletedRows),
           rows: rows.map((r) => ({ ...r, ts: r.ts instanceof Date ? r.ts.toISOString() : 'not a Date', bin: Array.from(r.bin), keys: Object.keys(r) })),
         };`,
      ),
    );
    const json = await run('types');
    expect(json.exitCode).toBe(0);
    const row = (g: number): Record<string, unknown> => ({
      i: g,
      big: '9007199254740993',
      n: '1.5',
      b: g % 2 === 0,
      nul: null,
      ts: '2026-01-02T03:04:05.000Z',
      bin: [1, 2],
      j: { a: [1, 2] },
      arr: [g, 2],
      dup: 'y',
      keys: ['i', 'big', 'n', 'b', 'nul', 'ts', 'bin', 'j', 'arr', 'dup'],
    });
    expect(json.scriptOutput).toEqual({ none: 0, deleted: '1', rows: [row(1), row(2), row(3)] });
  });

  it("logs the script's lines in the order it wrote them, with their fields, around its statements", async () => {
    ws.writeScript(
      'chatty.ts',
      script(
        'chatty',
        `log.info('first', { n: 1 });
         log.warn('second');
         await sql\`select 1\`.execute(db);
         log.info('third', { when: new Date('2026-01-01T00:00:00Z') });
         log.error('fourth', { cannot: () => 1 });
         for (let i = 0; i < 300; i++) log.info('bulk ' + i);
         ${DELETE_A_SESSION}
         log.info('last');`,
        "touches: { oidc_models: ['delete'] },",
      ).replace('async run({ db, args })', 'async run({ db, log })'),
    );
    const result = await ws.cli(['chatty', '--json', '--log-format', 'json']);
    expect(result.exitCode).toBe(0);
    const lines = result.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { level: number; msg: string; n?: number; when?: string; cannot?: unknown })
      .filter((l) => /^(first|second|third|fourth|bulk \d+|last)$/.test(l.msg));
    expect(lines.map((l) => l.msg)).toEqual([
      'first',
      'second',
      'third',
      'fourth',
      ...Array.from({ length: 300 }, (_, i) => `bulk ${i}`),
      'last',
    ]);
    expect(lines.slice(0, 4).map(({ level, n, when, cannot }) => ({ level, n, when, cannot }))).toEqual([
      { level: 30, n: 1, when: undefined, cannot: undefined },
      { level: 40, n: undefined, when: undefined, cannot: undefined },
      { level: 30, n: undefined, when: '2026-01-01T00:00:00.000Z', cannot: undefined },
      // A field that cannot cross to the runner (a function) is dropped; the line is kept.
      { level: 50, n: undefined, when: undefined, cannot: undefined },
    ]);
    expect(parseJson<RunResult>(result).changes['public.oidc_models']).toMatchObject({ deleted: 1 });
  });

  it('runs in a child started from its own start-up snapshot, confined as ever', async () => {
    ws.writeScript('argv.ts', script('argv', 'return { execArgv: process.execArgv };'));
    const json = await run('argv');
    expect(json.exitCode).toBe(0);
    const { execArgv } = json.scriptOutput as { execArgv: string[] };
    expect(execArgv).toEqual(expect.arrayContaining(['--snapshot-blob', path.join(BUNDLE_DIR, 'child.blob')]));
    expect(execArgv.some((arg) => /^--(experimental-)?permission$/.test(arg))).toBe(true);
  });

  it('runs the faithful cleanup exactly as before', async () => {
    const json = await run('cleanup-invalid-sessions');
    expect(json.exitCode).toBe(0);
    expect(json.changes).toEqual({
      'public.oidc_models': { inserted: 0, updated: 0, deleted: EXPECTED_CLEANUP.deleted, truncated: false },
    });
    expect(json.scriptOutput).toEqual(EXPECTED_CLEANUP);
  });

  it('lists the scripts with their declarations; a script that throws at import fails with exit 2', async () => {
    ws.writeScript('broken.ts', "throw new Error('broken at import');\nexport default {};\n");
    const listed = parseJson<ListedScript[]>(await ws.cli(['list', '--json']));
    expect(listed.find((s) => s.name === 'cleanup-invalid-sessions')).toMatchObject({
      kind: 'ts',
      touches: { 'public.oidc_models': ['delete'] },
      limits: { 'public.oidc_models': { delete: 10_000 } },
      critical: ['public.users'],
    });
    expect(listed.find((s) => s.name === 'broken')?.error).toContain('broken at import');
    const result = await ws.cli(['broken']);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('broken at import');
  });

  (process.getuid?.() === 0 ? it : it.skip)('refuses with exit 2 when the script user cannot read the scripts', async () => {
    ws.writeScript('hidden.ts', script('hidden', 'return 1;'));
    chmodSync(ws.scriptsDir, 0o700);
    const result = await ws.cli(['hidden']);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain(ws.scriptsDir);
    expect(result.stderr).toContain('chmod o+rX');
  });
});

describe('the hang rule', () => {
  it('stops a script that loops after its last statement, and the caller rolls back', async () => {
    const t = await createTestDatabase();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'safe-run-hang-'));
    chmodSync(dir, 0o755);
    try {
      const file = path.join(dir, 'spin.ts');
      writeFileSync(
        file,
        script(
          'spin',
          `${DELETE_A_SESSION} const r = await sql\`select now() as t, 10::bigint as b\`.execute(db);
        if (!(r.rows[0].t instanceof Date)) throw new Error('dates do not survive');
        for (;;) {}`,
        ),
      );
      const loaded = await loadScriptFile(file, { idleTimeoutMs: 500 });
      const before = await countRows(t.db, 'oidc_models');
      const trx = await t.db.startTransaction().execute();
      const context = { gate: directGate(trx), args: [], log: silentLogger, dryRun: false, signal: new AbortController().signal };
      await expect(loaded.run(context)).rejects.toThrow(/did not finish within 500 ms of its last one/);
      await trx.rollback().execute();
      expect(await countRows(t.db, 'oidc_models')).toBe(before);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await t.drop();
    }
  });
});

/** Keeps the debug lines, where the parent says which child it started. */
function recordingLogger(): Logger & { readonly started: number[] } {
  const started: number[] = [];
  const keep = (msg: string, fields?: Record<string, unknown>): void => {
    if (msg === 'script child started') started.push(Number(fields?.pid));
  };
  return { started, debug: keep, info: keep, warn: keep, error: keep };
}

describe('one child per guarded run', () => {
  let t: Awaited<ReturnType<typeof createTestDatabase>>;
  let dir: string;
  beforeEach(async () => {
    t = await createTestDatabase();
    dir = mkdtempSync(path.join(os.tmpdir(), 'safe-run-one-child-'));
    chmodSync(dir, 0o755);
  });
  afterEach(async () => {
    rmSync(dir, { recursive: true, force: true });
    await t.drop();
  });

  const runInTransaction = async (loaded: Awaited<ReturnType<typeof loadScriptFile>>): Promise<unknown> => {
    const trx = await t.db.startTransaction().execute();
    try {
      return await loaded.run({ gate: directGate(trx), args: [], log: silentLogger, dryRun: false, signal: new AbortController().signal });
    } finally {
      await trx.rollback().execute();
    }
  };

  it('starts the child from its start-up snapshot, which the build made with this Node', async () => {
    const file = path.join(dir, 'argv.ts');
    writeFileSync(file, script('argv', 'return { execArgv: process.execArgv };'));
    const loaded = await loadScriptFile(file, { log: silentLogger });
    try {
      const { execArgv } = (await runInTransaction(loaded)) as { execArgv: string[] };
      expect(execArgv).toEqual(expect.arrayContaining(['--snapshot-blob', path.join(BUNDLE_DIR, 'child.blob')]));
      // Still confined: the permission model is on.
      expect(execArgv.some((arg) => /^--(experimental-)?permission$/.test(arg))).toBe(true);
    } finally {
      await loaded.dispose();
    }
  });

  it('runs the script in the child that read its declarations', async () => {
    const file = path.join(dir, 'pid.ts');
    writeFileSync(
      file,
      script('pid', 'await sql`select 1`.execute(db); return { pid: process.pid, evaluations: (globalThis.evaluations ?? 0) };').replace(
        'export default',
        'globalThis.evaluations = (globalThis.evaluations ?? 0) + 1;\nexport default',
      ),
    );
    const log = recordingLogger();
    const loaded = await loadScriptFile(file, { log });
    expect(log.started).toHaveLength(1);
    expect(scriptChildren()).toEqual(log.started);
    // The module read for the declarations is the one that runs: imported once, in that very process.
    expect(await runInTransaction(loaded)).toEqual({ pid: log.started[0], evaluations: 1 });
    expect(log.started).toHaveLength(1);
    await waitFor(() => scriptChildren().length === 0);
  });

  it('runs the source it hashed, not the file as edited after the load (TOCTOU)', async () => {
    const file = path.join(dir, 'swap.ts');
    const hashed = script('swap', "return 'the hashed version';");
    writeFileSync(file, hashed);
    const loaded = await loadScriptFile(file);
    writeFileSync(file, script('swap', "await sql`delete from users`.execute(db); return 'the edited version';"));
    expect(loaded.sha256).toBe(createHash('sha256').update(hashed).digest('hex'));
    expect(await runInTransaction(loaded)).toBe('the hashed version');
    // Run again (a fresh child): still the hashed text, sent again, never the file.
    expect(await runInTransaction(loaded)).toBe('the hashed version');
  });

  it('leaves no child behind when disposed without running, and dispose is idempotent', async () => {
    const file = path.join(dir, 'idle.ts');
    writeFileSync(file, script('idle', 'return 1;'));
    const log = recordingLogger();
    const loaded = await loadScriptFile(file, { log });
    expect(scriptChildren()).toEqual(log.started);
    await loaded.dispose();
    expect(scriptChildren()).toEqual([]);
    await loaded.dispose();
  });

  it('kills the idle child when the guarded run is refused by the lock (exit 6)', async () => {
    const ws = await createWorkspace({ backup: { scope: 'none' } });
    const holder = createDb(ws.t.url, { maxConnections: 1 });
    try {
      ws.writeScript('locked.ts', script('locked', DELETE_A_SESSION));
      const config = await loadConfig({ cwd: ws.cwd, env: ws.env });
      await sql`select pg_advisory_lock(${0x5afe}, 1)`.execute(holder);
      const seen: number[][] = [];
      const load: typeof loadScriptByName = async (...args) => {
        const loaded = await loadScriptByName(...args);
        seen.push(scriptChildren());
        return loaded;
      };
      const refused = withTarget(config.databaseUrl, (target) =>
        runGuarded(
          config,
          { scriptName: 'locked', args: [], dryRun: false, reason: 'test', backupScope: 'none' },
          target,
          silentLogger,
          load,
        ),
      );
      await expect(refused).rejects.toMatchObject({ exitCode: 6 });
      expect(seen).toEqual([[expect.any(Number)]]);
      expect(scriptChildren()).toEqual([]);
    } finally {
      await holder.destroy();
      await ws.cleanup();
    }
  });
});
