import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { sql } from 'kysely';
import { loadConfig } from '../src/config/load.js';
import { createDb, type Db } from '../src/db/connection.js';
import { withTarget } from '../src/db/target.js';
import { usageError } from '../src/errors.js';
import { silentLogger } from '../src/logger.js';
import type { RunIntentBody } from '../src/records/index.js';
import { runGuarded } from '../src/run/pipeline.js';
import type { RunResult } from '../src/run/types.js';
import { loadScriptByName } from '../src/script/load.js';
import { takeSnapshot } from '../src/snapshot/take.js';
import { parseJson } from './helpers/cli.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { createWorkspace, type Workspace } from './helpers/workspace.js';
import { waitFor } from './helpers/attacks.js';
import { scriptChildren } from './helpers/processes.js';

/**
 * A guarded run connects, opens the log, takes the lock and reads the catalog while the
 * script's child is still starting. What it must keep: the failure it reports is the one the
 * pipeline meets first, nothing is left behind when a step fails early, and the intent holds
 * the same facts as when every step ran in turn.
 */
const DELETE_A_SESSION = "await sql`delete from oidc_models where id = 'sess-valid-pro'`.execute(db);";
const script = (name: string, body: string): string => `
import { defineScript, sql } from 'safe-run';
export default defineScript({
  name: '${name}',
  description: 'test',
  touches: { oidc_models: ['delete'] },
  async run({ db }) { ${body} },
});
`;

/**
 * Sessions a run opened in this database (it names them safe-run:<script>:<run id>), once the
 * server has seen their clients go: a closed connection's backend exits a moment later.
 */
async function runSessionsLeft(db: Db): Promise<number> {
  const count = async (): Promise<number> => {
    const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from pg_stat_activity
       where datname = current_database() and application_name like 'safe-run:%' and pid <> pg_backend_pid()`.execute(db);
    return rows[0]!.n;
  };
  await waitFor(async () => (await count()) === 0, 10_000).catch(() => {});
  return count();
}

/** The newest run's intent. */
function lastIntent(ws: Workspace): RunIntentBody {
  const entries = readFileSync(path.join(ws.evidenceDir, 'audit.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { kind: string; body: RunIntentBody });
  return entries.filter((e) => e.kind === 'run.intent').at(-1)!.body;
}

describe('a guarded run does the script-independent steps while the script loads', () => {
  let ws: Workspace;
  let holder: Db;
  beforeEach(async () => {
    ws = await createWorkspace({ backup: { scope: 'none' } });
    holder = createDb(ws.t.url, { maxConnections: 1 });
  });
  afterEach(async () => {
    await holder.destroy();
    await ws.cleanup();
  });

  const guarded = async (name: string, load: typeof loadScriptByName): Promise<RunResult> => {
    const config = await loadConfig({ cwd: ws.cwd, env: ws.env });
    return withTarget(config.databaseUrl, (target) =>
      runGuarded(config, { scriptName: name, args: [], dryRun: false, reason: 'test', backupScope: 'none' }, target, silentLogger, load),
    );
  };

  it('reports the lock refused while the child was starting (exit 6), and leaves no child and no session behind', async () => {
    ws.writeScript('slowload.ts', script('slowload', DELETE_A_SESSION));
    // Children an earlier test file left to their idle timeout in this same jest worker are not this run's.
    const earlier = new Set(scriptChildren());
    await sql`select pg_advisory_lock(${0x5afe}, 1)`.execute(holder);
    let loaded = false;
    // The declarations arrive only after the lock was tried: the refusal happens while the child is still held.
    const load: typeof loadScriptByName = async (...args) => {
      const script = await loadScriptByName(...args);
      await waitUntilLockTried(holder);
      loaded = true;
      return script;
    };
    await expect(guarded('slowload', load)).rejects.toMatchObject({ exitCode: 6 });
    expect(loaded).toBe(true);
    expect(scriptChildren().filter((pid) => !earlier.has(pid))).toEqual([]);
    expect(await runSessionsLeft(holder)).toBe(0);
    // Nothing was recorded: the run stopped before its intent.
    expect(
      existsSync(path.join(ws.evidenceDir, 'audit.jsonl')) ? readFileSync(path.join(ws.evidenceDir, 'audit.jsonl'), 'utf8').trim() : '',
    ).toBe('');
  });

  it('reports a script that cannot load (exit 2, its own message) over a lock refused meanwhile, as when the load came first', async () => {
    await sql`select pg_advisory_lock(${0x5afe}, 1)`.execute(holder);
    const load: typeof loadScriptByName = async () => {
      await waitUntilLockTried(holder);
      throw usageError('Script broken.ts could not be loaded: boom at import', 'Fix the script.');
    };
    const error = await guarded('broken', load).catch((e: unknown) => e);
    expect(error).toMatchObject({ exitCode: 2, message: 'Script broken.ts could not be loaded: boom at import' });
    expect(await runSessionsLeft(holder)).toBe(0);
  });

  it('reports a .sql script’s refused statement (exit 2) over a lock refused first, though its statements are judged later', async () => {
    ws.writeScript('sneaky.sql', '-- @description sneaky\n-- @touches users: delete\nselect 1;\ncommit;\ndelete from users;\n');
    await sql`select pg_advisory_lock(${0x5afe}, 1)`.execute(holder);
    const error = await guarded('sneaky', loadScriptByName).catch((e: unknown) => e);
    expect(error).toMatchObject({ exitCode: 2, message: expect.stringMatching(/refuses to run:\n {2}line 4: commit/) });
    expect(await runSessionsLeft(holder)).toBe(0);
    expect(
      existsSync(path.join(ws.evidenceDir, 'audit.jsonl')) ? readFileSync(path.join(ws.evidenceDir, 'audit.jsonl'), 'utf8').trim() : '',
    ).toBe('');
  });

  it('records the same git facts as before: the script commit and dirty state, and the git identity', async () => {
    const git = (args: string[]) => execa('git', ['-C', ws.scriptsDir, ...args]);
    ws.writeScript('tracked.ts', script('tracked', DELETE_A_SESSION));
    await git(['init', '-q']);
    await git(['add', 'tracked.ts']);
    await git(['-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-qm', 'tracked']);
    const head = String((await git(['rev-parse', 'HEAD'])).stdout).trim();
    const gitUser = await execa('git', ['config', '--get', 'user.name'], { cwd: ws.cwd, reject: false });

    const clean = await ws.cli(['tracked', '--json', '--backup', 'none']);
    expect(parseJson<RunResult>(clean).status).toBe('committed');
    expect(lastIntent(ws).script.git).toEqual({ commit: head, dirty: false });
    expect(lastIntent(ws).operator.gitUser).toBe(gitUser.exitCode === 0 ? String(gitUser.stdout).trim() : null);

    writeFileSync(path.join(ws.scriptsDir, 'tracked.ts'), script('tracked', 'return 1;'));
    const edited = await ws.cli(['tracked', '--json', '--backup', 'none']);
    expect(parseJson<RunResult>(edited).status).toBe('committed');
    expect(lastIntent(ws).script.git).toEqual({ commit: head, dirty: true });
  });

  // Every connection is a server process started for the run; on two cores the extra ones cost
  // more of the server's CPU than their parallel reads saved (BENCHMARKS.md, "fifteenth stop").
  it('starts five server sessions for a run with a pg_dump backup: its own three, the script’s and pg_dump’s', async () => {
    ws.writeScript(
      'cascade.sql',
      "-- @touches oidc_models: delete\n-- @touches models: delete\ndelete from oidc_models where id = 'sess-valid-pro';\ndelete from models where false;\n",
    );
    const sessions = async (): Promise<number> => {
      const { rows } = await sql<{ n: number }>`
        select pg_stat_clear_snapshot(), sessions::int as n from pg_stat_database where datname = current_database()`.execute(holder);
      return rows[0]!.n;
    };
    // The holder's own session is counted once its statistics are sent: force that first.
    await sql`select pg_stat_force_next_flush()`.execute(holder);
    await sql`select 1`.execute(holder);
    const before = await sessions();
    const run = await ws.cli(['cascade', '--json', '--backup', 'touched']);
    expect(parseJson<RunResult>(run).status).toBe('committed');
    expect(await runSessionsLeft(holder)).toBe(0);
    // A backend counts its session when it reports its statistics, at the latest as it exits.
    await waitFor(async () => (await sessions()) - before >= 5, 5_000).catch(() => {});
    await new Promise((r) => setTimeout(r, 300));
    expect((await sessions()) - before).toBe(5);
  });
});

/** Waits until the run has tried the lock: its session shows up beside the holder's. */
async function waitUntilLockTried(holder: Db): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from pg_stat_activity
       where application_name like 'safe-run:%' and (query like '%pg_try_advisory_lock%' or query like '%from pg_locks%')`.execute(holder);
    if (rows[0]!.n > 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the run never tried the lock');
}

describe('takeSnapshot with the tables to count still being worked out', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(async () => {
    await t.drop();
  });

  it('reads the catalog meanwhile and counts exactly what the promise names once it resolves', async () => {
    let resolve: (tables: ReadonlySet<string>) => void = () => {};
    const exactTables = new Promise<ReadonlySet<string>>((r) => (resolve = r));
    const taking = takeSnapshot(t.db, { exactTables });
    resolve(new Set(['public.users', 'public.oidc_models']));
    const { snapshot } = await taking;
    expect(snapshot.tables['public.users']).toMatchObject({ rowsKind: 'exact', rows: 8 });
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from oidc_models`.execute(t.db);
    expect(snapshot.tables['public.oidc_models']).toMatchObject({ rowsKind: 'exact', rows: rows[0]!.n });
    expect(snapshot.tables['public.models']!.rowsKind).toBe('estimate');
    expect(snapshot.tables['public.users']!.fingerprint).toMatch(/^[0-9a-f]{64}$/);
  });

  it('fails with the promise’s error and ends its transaction', async () => {
    const failed = takeSnapshot(t.db, { exactTables: Promise.reject(new Error('the script did not load')) });
    await expect(failed).rejects.toThrow('the script did not load');
    const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from pg_stat_activity where datname = current_database() and state like 'idle in transaction%'`.execute(
      t.db,
    );
    expect(rows[0]!.n).toBe(0);
  });
});
