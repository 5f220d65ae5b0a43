import { execa } from 'execa';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { createDb, type Db } from '../src/db/connection.js';
import { withDatabase } from '../src/db/url.js';
import type { PitrRestoreResult } from '../src/commands/restore-pitr.js';
import type { RunResult } from '../src/run/types.js';
import { parseRecord, type EntryEnvelope, type RunIntentBody, type RunPostBody } from '../src/records/index.js';
import { migrateToLatest } from '../demo/migrate.js';
import { seedDemo } from '../demo/seed.js';
import { runCli, parseJson, type CliResult } from './helpers/cli.js';
import { SCRIPTS_DIR } from './helpers/constants.js';
import { countRows } from './helpers/db.js';
import { createEvidence, logLines, type TestEvidence } from './helpers/evidence.js';
import { startPgBackRestCluster, type PgBackRestCluster } from '../support/throwaway/pgbackrest.js';

interface DoctorJson {
  readonly checks: readonly { readonly name: string; readonly ok: boolean; readonly detail: string; readonly exitCode?: number }[];
}

/**
 * backup.mode "pgbackrest" end to end: a real cluster archiving into a real local pgBackRest
 * repository, a guarded run that dumps nothing, and `restore --pitr` into a new data directory
 * whose counts must equal the run's pre-snapshot exactly, while the live cluster stays as it is.
 */
describe('pgBackRest point-in-time recovery', () => {
  let cluster: PgBackRestCluster;
  let evidence: TestEvidence;
  let cwd: string;
  let url: string;
  let db: Db;
  const restoreDirs: string[] = [];

  const cli = (args: readonly string[]) => runCli(args, { cwd, env: { ...evidence.env, DATABASE_URL: url } });
  const writeConfig = (pgbackrest: Record<string, unknown>): void =>
    writeFileSync(
      path.join(cwd, 'safe-run.config.json'),
      JSON.stringify({
        scriptsDir: SCRIPTS_DIR(),
        // Counted exactly before the run, so the restore has more than the script's own table to match.
        criticalTables: { users: { maxDropPercent: 10 } },
        exactTables: ['models', 'oauth_clients', 'subscriptions', 'credit_allocation'],
        backup: { mode: 'pgbackrest', pgbackrest: { stanza: cluster.stanza, configPath: cluster.configPath, ...pgbackrest } },
      }),
    );

  beforeAll(async () => {
    cluster = await startPgBackRestCluster();
    const admin = createDb(cluster.server.url, { maxConnections: 1 });
    try {
      await sql`create database pitr_demo`.execute(admin);
    } finally {
      await admin.destroy();
    }
    url = withDatabase(cluster.server.url, 'pitr_demo');
    db = createDb(url);
    await migrateToLatest(db);
    await seedDemo(db);
    evidence = await createEvidence();
    cwd = mkdtempSync(path.join(os.tmpdir(), 'safe-run-pitr-ws-'));
    writeConfig({ archiveTimeout: '30s' });
  }, 120_000);

  afterAll(async () => {
    for (const dir of restoreDirs) await stopRestored(dir);
    await db?.destroy();
    await cluster?.stop();
    await evidence?.cleanup();
    if (cwd) rmSync(cwd, { recursive: true, force: true });
  });

  const stopRestored = async (parent: string): Promise<void> => {
    const dir = path.join(parent, 'restored');
    if (existsSync(path.join(dir, 'postmaster.pid'))) {
      await execa(path.join(cluster.server.binDir, 'pg_ctl'), ['-D', dir, '-m', 'immediate', '-w', 'stop'], {
        ...(cluster.owner ?? {}),
        reject: false,
      });
    }
    rmSync(parent, { recursive: true, force: true });
  };

  it('runs without a dump, records the pre-run WAL position and backup set, and restores to exactly before the run', async () => {
    const result = await cli(['cleanup-invalid-sessions', '--json']);
    expect(result.stderr).not.toMatch(/pg_dump/);
    expectExit(result, 0);
    const run = parseJson<RunResult>(result);
    expect(run.status).toBe('committed');
    expect(run.backup.path).toBeNull();
    const pitr = run.backup.pitr!;
    expect(pitr).toMatchObject({ v: 1, engine: 'pgbackrest', stanza: cluster.stanza });
    expect(pitr.backupLabel).toMatch(/^\d{8}-\d{6}F/);
    const preSessions = run.counts.pre['public.oidc_models']!;
    const postSessions = run.counts.post['public.oidc_models']!;
    expect(postSessions).toBeLessThan(preSessions);

    // The signed entries carry it: the intent's backup and the post's archive confirmation.
    const entries = logLines(evidence.evidenceDir).map((l) => JSON.parse(l) as { kind: string; runId?: string; body: unknown });
    const intent = entries.find((e) => e.kind === 'run.intent' && e.runId === run.runId)!.body as RunIntentBody;
    expect(intent.backup.pitr!.preRunLsn).toBe(intent.snapshot.walLsn);
    const post = (entries.find((e) => e.kind === 'run.post' && e.runId === run.runId)!.body as RunPostBody).pitr!;
    expect(post).toMatchObject({ v: 1, archived: true });
    expect(post.archiveMax! >= post.walFile).toBe(true);
    // The repository itself holds the commit's segment, as pgBackRest reports it.
    const info = JSON.parse(await cluster.pgbackrest(['info', '--output=json'])) as { archive: { max: string }[] }[];
    expect(info[0]!.archive.at(-1)!.max >= post.walFile).toBe(true);

    // The live cluster, before the restore: the run's deletes are there.
    const liveBefore = await liveState();
    expect(liveBefore.sessions).toBe(postSessions);

    const parent = mkdtempSync(path.join(os.tmpdir(), 'safe-run-pitr-target-'));
    // pgBackRest and the server run as the postgres OS user when we are root: it must reach the directory.
    chmodSync(parent, 0o711);
    const dataDir = path.join(parent, 'restored');
    restoreDirs.push(parent);
    const restored = await cli(['restore', run.runId, '--pitr', '--data-dir', dataDir, '--json']);
    expectExit(restored, 0);
    const r = parseJson<PitrRestoreResult>(restored);
    expect(r).toMatchObject({ runId: run.runId, backupLabel: pitr.backupLabel, targetLsn: pitr.preRunLsn, mismatched: [] });
    // Every table counted exactly before the run has exactly that count in the restored cluster.
    const exact = Object.entries(r.counts).filter(([, c]) => c.preKind === 'exact');
    expect(exact.length).toBeGreaterThan(3);
    for (const [table, c] of exact) expect({ table, n: c.restored }).toEqual({ table, n: c.pre });
    expect(r.counts['public.oidc_models']!.restored).toBe(preSessions);

    // Counted independently, on the restored server itself.
    const copy = createDb(`postgres://postgres@127.0.0.1:${r.port}/pitr_demo`, { maxConnections: 1 });
    try {
      expect(await countRows(copy, 'oidc_models')).toBe(preSessions);
      expect((await sql<{ r: boolean }>`select pg_is_in_recovery() as r`.execute(copy)).rows[0]!.r).toBe(false);
      expect((await sql<{ v: string }>`select current_setting('archive_mode') as v`.execute(copy)).rows[0]!.v).toBe('off');
    } finally {
      await copy.destroy();
    }

    // The live cluster is untouched: same rows, same server process, same data directory.
    expect(await liveState()).toEqual(liveBefore);
    // Every entry, restore.pitr included, parses as its typed record, field for field.
    const signed = logLines(evidence.evidenceDir).map((l) => JSON.parse(l) as EntryEnvelope);
    expect(signed.at(-1)!.kind).toBe('restore.pitr');
    for (const entry of signed) {
      const parsed = parseRecord(entry);
      expect(parsed.ok && parsed.record.body).toEqual(entry.body);
    }
    expect((await cli(['verify', '--json'])).exitCode).toBe(0);
  });

  it('refuses a data directory that is not empty (touching nothing in it) and a port in use', async () => {
    const runId = (parseJson<{ runs: { runId: string }[] }>(await cli(['log', '--json'])).runs ?? []).at(-1)?.runId;
    expect(runId).toBeDefined();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'safe-run-pitr-busy-'));
    writeFileSync(path.join(dir, 'PG_VERSION'), '15\n');
    const result = await cli(['restore', runId!, '--pitr', '--data-dir', dir]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/not an empty directory/);
    expect(readFileSync(path.join(dir, 'PG_VERSION'), 'utf8')).toBe('15\n');
    rmSync(dir, { recursive: true, force: true });

    // The live cluster's own port: refused before any directory is made.
    const fresh = path.join(os.tmpdir(), `safe-run-pitr-port-${runId}`);
    const busy = await cli(['restore', runId!, '--pitr', '--data-dir', fresh, '--port', String(cluster.server.port)]);
    expect(busy.exitCode).toBe(2);
    expect(busy.stderr).toMatch(/Port \d+ is in use/);
    expect(existsSync(fresh)).toBe(false);
  });

  it('rejects pgbackrest mode without a stanza, naming the key and the file (exit 2)', async () => {
    const file = path.join(cwd, 'no-stanza.config.json');
    writeFileSync(file, JSON.stringify({ backup: { mode: 'pgbackrest' } }));
    const result = await cli(['doctor', '--config', file]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('backup.pgbackrest');
    expect(result.stderr).toContain(file);
  });

  it('doctor checks pgBackRest, the stanza and WAL archiving', async () => {
    const report = parseJson<DoctorJson>(await cli(['doctor', '--json']));
    const checks = Object.fromEntries(report.checks.map((c) => [c.name, c]));
    expect(checks.pgbackrest).toMatchObject({ ok: true, detail: expect.stringMatching(/^pgBackRest 2\./) });
    expect(checks['pgbackrest-stanza']).toMatchObject({ ok: true, detail: expect.stringContaining(cluster.stanza) });
    expect(checks['wal-archive']).toMatchObject({ ok: true });
  });

  it('refuses to run the script (exit 4) when WAL archiving is broken, and doctor says so', async () => {
    writeConfig({ archiveTimeout: '3s' });
    const before = await countRows(db, 'oidc_models');
    await setArchiveCommand(`'/bin/false'`);
    try {
      const doctor = await cli(['doctor', '--json']);
      expect(doctor.exitCode).toBe(4);
      expect(parseJson<DoctorJson>(doctor).checks.find((c) => c.name === 'wal-archive')).toMatchObject({ ok: false, exitCode: 4 });

      const result = await cli(['cleanup-invalid-sessions', '--json']);
      expect(result.exitCode).toBe(4);
      const run = parseJson<RunResult>(result);
      expect(run.status).toBe('backup-failed');
      expect(run.backup.error).toMatch(/pgbackrest check failed/);
      expect(await countRows(db, 'oidc_models')).toBe(before);
      // Nothing ran, so there is nothing to rewind, and no directory is made for it.
      const dir = path.join(os.tmpdir(), `safe-run-pitr-none-${run.runId}`);
      const restore = await cli(['restore', run.runId, '--pitr', '--data-dir', dir]);
      expect(restore.exitCode).toBe(4);
      expect(restore.stderr).toMatch(/its backup step failed/);
      expect(existsSync(dir)).toBe(false);
    } finally {
      await setArchiveCommand(`'pgbackrest --config=${cluster.configPath} --stanza=${cluster.stanza} archive-push %p'`);
      writeConfig({ archiveTimeout: '30s' });
    }
  });

  /** The exit code, with the CLI's stderr in the failure message when it differs. */
  function expectExit(result: CliResult, code: number): void {
    if (result.exitCode !== code) throw new Error(`expected exit ${code}, got ${result.exitCode}:\n${result.stderr}`);
  }

  async function setArchiveCommand(value: string): Promise<void> {
    await sql.raw(`alter system set archive_command = ${value}`).execute(db);
    await sql`select pg_reload_conf()`.execute(db);
  }

  async function liveState(): Promise<{ sessions: number; users: number; pid: string; dataDir: string }> {
    const row = (
      await sql<{
        pid: string;
        dir: string;
      }>`select pg_postmaster_start_time()::text as pid, current_setting('data_directory') as dir`.execute(db)
    ).rows[0]!;
    return { sessions: await countRows(db, 'oidc_models'), users: await countRows(db, 'users'), pid: row.pid, dataDir: row.dir };
  }
});
