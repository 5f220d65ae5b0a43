import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { sql } from 'kysely';
import { loadConfig } from '../src/config/load.js';
import { withTarget } from '../src/db/target.js';
import { usageError } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import type { RunIntentBody } from '../src/records/index.js';
import { declarationHintPath } from '../src/run/declaration-hint.js';
import { runGuarded } from '../src/run/pipeline.js';
import type { RunResult } from '../src/run/types.js';
import { loadScriptByName } from '../src/script/load.js';
import { takeSnapshot } from '../src/snapshot/take.js';
import { parseJson } from './helpers/cli.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { createWorkspace, type Workspace } from './helpers/workspace.js';
import { waitFor } from './helpers/attacks.js';

/**
 * A TypeScript script's declarations from its last run start the exact counts and the backup
 * while its child is still starting (src/run/declaration-hint.ts). The hint may be stale,
 * edited or garbage: what the run records must be what it would have recorded without it.
 */
const script = (touches: string): string => `
import { defineScript, sql } from 'safe-run';
export default defineScript({
  name: 'hinted',
  description: 'test',
  touches: { ${touches} },
  async run({ db }) { await sql\`delete from oidc_models where id = 'sess-valid-pro'\`.execute(db); },
});
`;
const ONE_TABLE = "oidc_models: ['delete']";
const TWO_TABLES = "oidc_models: ['delete'], models: ['update']";

const PG_RESTORE = '/usr/lib/postgresql/15/bin/pg_restore';

/** The tables whose rows the archive holds, by pg_restore --list. */
async function tablesWithData(ws: Workspace, backupPath: string): Promise<string[]> {
  const { stdout } = await execa(PG_RESTORE, ['--list', path.join(ws.evidenceDir, backupPath)]);
  return String(stdout)
    .split('\n')
    .map((line) => / TABLE DATA (\S+) (\S+) /.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => `${m[1]}.${m[2]}`)
    .sort();
}

function intents(ws: Workspace): RunIntentBody[] {
  return readFileSync(path.join(ws.evidenceDir, 'audit.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { kind: string; body: RunIntentBody })
    .filter((e) => e.kind === 'run.intent')
    .map((e) => e.body);
}

const hintFile = (ws: Workspace): string => declarationHintPath(ws.evidenceDir, 'hinted')!;

/** A logger that keeps what it was told, so a test can wait for a step to have started. */
function recordingLogger(): Logger & { readonly lines: string[] } {
  const lines: string[] = [];
  const keep = (msg: string): void => void lines.push(msg);
  return { lines, debug: keep, info: keep, warn: keep, error: keep };
}

const STARTED_EARLY = "backup started on the script's declarations of its last run";

/**
 * A guarded run in this process whose script's declarations arrive only once the backup has
 * started on the hint: without one, the backup would wait for them and the run would hang
 * (the wait fails the test instead).
 */
async function runWithSlowChild(ws: Workspace, log: Logger & { readonly lines: string[] }): Promise<RunResult> {
  const config = await loadConfig({ cwd: ws.cwd, env: ws.env });
  const load: typeof loadScriptByName = async (...args) => {
    const loaded = await loadScriptByName(...args);
    await waitFor(() => log.lines.some((line) => line.startsWith(STARTED_EARLY)), 20_000);
    return loaded;
  };
  return withTarget(config.databaseUrl, (target) =>
    runGuarded(config, { scriptName: 'hinted', args: [], dryRun: false, reason: 'test' }, target, log, load),
  );
}

describe('a TypeScript run starts its backup on the declarations of its last run', () => {
  let ws: Workspace;
  beforeEach(async () => {
    ws = await createWorkspace({ criticalTables: { users: { maxDropPercent: 10 } } });
  });
  afterEach(async () => {
    await ws.cleanup();
  });

  it('keeps the declarations after a run, then backs up before the child has described the script, recording the same backup', async () => {
    ws.writeScript('hinted.ts', script(ONE_TABLE));
    const first = parseJson<RunResult>(await ws.cli(['hinted', '--json']));
    expect(first.status).toBe('committed');
    const source = readFileSync(path.join(ws.scriptsDir, 'hinted.ts'), 'utf8');
    expect(JSON.parse(readFileSync(hintFile(ws), 'utf8'))).toMatchObject({
      name: 'hinted',
      sha256: createHash('sha256').update(source).digest('hex'),
      touches: { 'public.oidc_models': ['delete'] },
    });

    const log = recordingLogger();
    const second = await runWithSlowChild(ws, log);
    expect(second.status).toBe('committed');
    expect(second.timingsMs.backupAhead).toBeGreaterThanOrEqual(0);
    expect(log.lines.some((line) => line.includes('taken again'))).toBe(false);
    // The same scope, pg_dump'ed and verified, as the run that had no hint.
    expect(second.backup).toMatchObject({ status: 'verified', scope: first.backup.scope, tables: first.backup.tables });
    expect(await tablesWithData(ws, second.backup.path!)).toEqual(await tablesWithData(ws, first.backup.path!));
    const [a, b] = intents(ws);
    expect(b!.backup.tables).toEqual(a!.backup.tables);
    expect(Object.keys(b!.snapshot.tables).filter((k) => b!.snapshot.tables[k]!.rowsKind === 'exact')).toEqual(
      Object.keys(a!.snapshot.tables).filter((k) => a!.snapshot.tables[k]!.rowsKind === 'exact'),
    );
  });

  it('ATTACK: a script edited to declare one more table gets a backup of the new scope, and the early archive is gone', async () => {
    ws.writeScript('hinted.ts', script(ONE_TABLE));
    expect(parseJson<RunResult>(await ws.cli(['hinted', '--json'])).status).toBe('committed');
    ws.writeScript('hinted.ts', script(TWO_TABLES));

    const log = recordingLogger();
    const edited = await runWithSlowChild(ws, log);
    // The early dump of the old scope was stopped and taken again on the same snapshot.
    expect(log.lines.some((line) => line.includes('taken again'))).toBe(true);
    expect(edited.status).toBe('committed');
    expect(edited.backup.status).toBe('verified');
    expect(edited.backup.tables).toContain('public.models');
    expect(await tablesWithData(ws, edited.backup.path!)).toContain('public.models');
    const intent = intents(ws).at(-1)!;
    expect(intent.backup).toEqual(edited.backup);
    expect(intent.snapshot.tables['public.models']!.rowsKind).toBe('exact');
    // The archive on disk is the one the intent names, byte for byte; no other is left for this run.
    const archive = readFileSync(path.join(ws.evidenceDir, edited.backup.path!));
    expect(createHash('sha256').update(archive).digest('hex')).toBe(edited.backup.sha256);
    // The first run's archive and this one's: nothing of the early dump is left beside them.
    const backups = readdirSync(path.join(ws.evidenceDir, 'backups'));
    expect(backups).toHaveLength(2);
    expect(backups).toContain(path.basename(edited.backup.path!));

    // The same script with no hint at all records the same scope and the same verdict.
    rmSync(hintFile(ws));
    const control = parseJson<RunResult>(await ws.cli(['hinted', '--json']));
    expect(control.status).toBe(edited.status);
    expect(control.backup.tables).toEqual(edited.backup.tables);
    // The hint now describes the edited script.
    expect(JSON.parse(readFileSync(hintFile(ws), 'utf8')).touches).toHaveProperty(['public.models']);
  });

  it('ATTACK, end to end: the built CLI after an edit records the edited scope, whatever the child and the dump raced to', async () => {
    ws.writeScript('hinted.ts', script(ONE_TABLE));
    expect(parseJson<RunResult>(await ws.cli(['hinted', '--json'])).status).toBe('committed');
    ws.writeScript('hinted.ts', script(TWO_TABLES));
    const result = await ws.cli(['hinted', '--json']);
    expect(result.exitCode).toBe(0);
    const edited = parseJson<RunResult>(result);
    expect(edited.status).toBe('committed');
    expect(intents(ws).at(-1)!.backup.tables).toContain('public.models');
    expect(await tablesWithData(ws, edited.backup.path!)).toContain('public.models');
    expect(readdirSync(path.join(ws.evidenceDir, 'backups'))).toHaveLength(2);
  });

  it('a script that no longer loads stops the early backup and leaves no archive and no entry', async () => {
    ws.writeScript('hinted.ts', script(ONE_TABLE));
    expect(parseJson<RunResult>(await ws.cli(['hinted', '--json'])).status).toBe('committed');
    const entries = readFileSync(path.join(ws.evidenceDir, 'audit.jsonl'), 'utf8');
    const config = await loadConfig({ cwd: ws.cwd, env: ws.env });
    const log = recordingLogger();
    const load: typeof loadScriptByName = async () => {
      await waitFor(() => log.lines.some((line) => line.startsWith(STARTED_EARLY)), 20_000);
      throw usageError('Script hinted.ts could not be loaded: boom at import', 'Fix the script.');
    };
    const failed = withTarget(config.databaseUrl, (target) =>
      runGuarded(config, { scriptName: 'hinted', args: [], dryRun: false, reason: 'test' }, target, log, load),
    );
    await expect(failed).rejects.toMatchObject({ exitCode: 2, message: 'Script hinted.ts could not be loaded: boom at import' });
    expect(readdirSync(path.join(ws.evidenceDir, 'backups'))).toHaveLength(1);
    expect(readFileSync(path.join(ws.evidenceDir, 'audit.jsonl'), 'utf8')).toBe(entries);
  });

  it('a garbage or tampered hint file changes nothing and is not reported', async () => {
    ws.writeScript('hinted.ts', script(ONE_TABLE));
    const plain = parseJson<RunResult>(await ws.cli(['hinted', '--json']));

    writeFileSync(hintFile(ws), '{"format":1,"name":"hinted", garbage');
    const garbage = await ws.cli(['hinted', '--json']);
    expect(garbage.exitCode).toBe(0);
    expect(garbage.stderr).not.toMatch(/hint|WARN|ERROR/i);
    expect(parseJson<RunResult>(garbage).backup.tables).toEqual(plain.backup.tables);
    // Replaced by a good one once the child has described the script.
    expect(JSON.parse(readFileSync(hintFile(ws), 'utf8'))).toMatchObject({ name: 'hinted' });

    // Well-formed, but naming a table that does not exist and another critical table.
    writeFileSync(
      hintFile(ws),
      JSON.stringify({ format: 1, name: 'hinted', sha256: 'x', touches: { 'public.nope': ['delete'] }, critical: ['public.models'] }),
    );
    const tampered = await ws.cli(['hinted', '--json']);
    expect(tampered.exitCode).toBe(0);
    const json = parseJson<RunResult>(tampered);
    expect(json.status).toBe('committed');
    expect(json.backup.tables).toEqual(plain.backup.tables);
    expect(intents(ws).at(-1)!.backup.tables).toEqual(plain.backup.tables);
  });

  it('an evidence directory where the hint cannot be written still runs', async () => {
    ws.writeScript('hinted.ts', script(ONE_TABLE));
    // A file where the hints directory would go: the hint is not kept, and nothing else changes.
    mkdirSync(ws.evidenceDir, { recursive: true });
    writeFileSync(path.join(ws.evidenceDir, 'hints'), 'not a directory');
    const result = await ws.cli(['hinted', '--json']);
    expect(result.exitCode).toBe(0);
    expect(parseJson<RunResult>(result).status).toBe('committed');
    expect(existsSync(hintFile(ws))).toBe(false);
  });
});

describe('takeSnapshot with a guess at the tables to count', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(async () => {
    await t.drop();
  });

  it('counts what the settled set adds and records exact only what it names', async () => {
    let resolve: (tables: ReadonlySet<string>) => void = () => {};
    const exactTables = new Promise<ReadonlySet<string>>((r) => (resolve = r));
    const counted: string[] = [];
    const taking = takeSnapshot(t.db, {
      exactTables,
      exactTablesGuess: new Set(['public.users', 'public.models']),
      onCounted: (_done, _total, table) => counted.push(table),
    });
    // The guess is counted without waiting for the set.
    await waitFor(() => counted.includes('public.models'), 20_000);
    resolve(new Set(['public.users', 'public.oidc_models']));
    const { snapshot } = await taking;
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from oidc_models`.execute(t.db);
    expect(snapshot.tables['public.oidc_models']).toMatchObject({ rowsKind: 'exact', rows: rows[0]!.n });
    expect(snapshot.tables['public.users']).toMatchObject({ rowsKind: 'exact', rows: 8 });
    expect(snapshot.tables['public.models']!.rowsKind).toBe('estimate');
    // users was counted once, for the guess.
    expect(counted.filter((k) => k === 'public.users')).toHaveLength(1);
  });
});
