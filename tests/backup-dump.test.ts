import { execa } from 'execa';
import { sql } from 'kysely';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runBackup, type BackupOptions } from '../src/backup/backup.js';
import { createScratchDatabase, restoreBackup } from '../src/backup/restore.js';
import { backupScope, readScopeGraph } from '../src/backup/scope.js';
import { createDb, type Db } from '../src/db/connection.js';
import { withDatabase } from '../src/db/url.js';
import { ExitCode, SafeRunError } from '../src/errors.js';
import { silentLogger, type Logger } from '../src/logger.js';
import { takeSnapshot } from '../src/snapshot/take.js';
import type { Snapshot } from '../src/records/index.js';
import { createTestDatabase, serverUrl, type TestDatabase } from './helpers/db.js';

const SERVER_MAJOR = 15;

async function exactCount(db: Db, key: string, snapshot: Snapshot): Promise<number> {
  const table = snapshot.tables[key]!;
  return (await sql<{ n: number }>`select count(*)::int8 as n from ${sql.id(table.schema, table.name)}`.execute(db)).rows[0]!.n;
}

/** A logger that keeps what it is told, to look at pg_dump's argv. */
function recordingLogger(): Logger & { readonly lines: string[] } {
  const lines: string[] = [];
  const keep = (msg: string, fields?: Record<string, unknown>): void => {
    lines.push(`${msg} ${JSON.stringify(fields ?? {})}`);
  };
  return { lines, debug: keep, info: keep, warn: keep, error: keep };
}

describe('runBackup and restoreBackup', () => {
  let t: TestDatabase;
  let admin: Db;
  let evidenceDir: string;
  const scratch: string[] = [];

  const newScratch = async (): Promise<{ url: URL; db: Db }> => {
    const name = `scratch_${randomBytes(4).toString('hex')}`;
    await createScratchDatabase(admin, name);
    scratch.push(name);
    const url = new URL(withDatabase(serverUrl(), name));
    return { url, db: createDb(url, { maxConnections: 1 }) };
  };
  const options = (over: Partial<BackupOptions>): BackupOptions => ({
    db: t.db,
    url: new URL(t.url),
    snapshotId: null,
    scope: 'touched',
    tables: [],
    evidenceDir,
    runId: `r${randomBytes(6).toString('hex')}`,
    compress: 6,
    jobs: 1,
    lockWaitTimeoutMs: 10_000,
    pgBinDir: null,
    serverMajor: SERVER_MAJOR,
    log: silentLogger,
    ...over,
  });

  beforeAll(async () => {
    t = await createTestDatabase('bk');
    admin = createDb(serverUrl(), { maxConnections: 1 });
    evidenceDir = mkdtempSync(path.join(os.tmpdir(), 'safe-run-evidence-'));
  });
  afterAll(async () => {
    for (const name of scratch) await sql`drop database if exists ${sql.id(name)} with (force)`.execute(admin);
    await admin.destroy();
    await t.drop();
    rmSync(evidenceDir, { recursive: true, force: true });
  });

  it('backs up the pre-snapshot state, verifies it, and restores to exactly the snapshot counts', async () => {
    // A role with a password: the URL carries it, argv must not.
    await sql`create role backup_runner login superuser password 'pw-Very-s3cret'`.execute(t.db);
    const url = new URL(t.url);
    url.username = 'backup_runner';
    url.password = 'pw-Very-s3cret';
    const log = recordingLogger();
    const tables = await backupScope(t.db, ['public.users'], 'touched');
    const runId = 'r-demo';
    const { snapshot, held } = await takeSnapshot(t.db, { exactCountThreshold: 0, exactTables: new Set(tables) }, async (snapshotId) => {
      // Committed after the snapshot: neither the counts nor the backup may contain it.
      await sql`insert into users (email) values ('late.arrival@example.com')`.execute(t.db);
      return runBackup(options({ url, snapshotId, tables, runId, log }));
    });
    const record = held!;
    expect(record).toEqual(
      expect.objectContaining({
        status: 'verified',
        scope: 'touched',
        format: 'custom',
        path: path.join('backups', `${runId}.dump`),
        tables,
      }),
    );
    const file = path.join(evidenceDir, record.path!);
    expect(record.sha256).toBe(createHash('sha256').update(readFileSync(file)).digest('hex'));
    expect(record.bytes).toBe(statSync(file).size);
    expect(record.pgDump!.version).toMatch(/^1\d/);

    const argv = log.lines.find((l) => l.startsWith('pg_dump '))!;
    expect(argv).toContain('--snapshot=');
    expect(argv).not.toContain('s3cret');
    expect(argv).not.toContain('backup_runner');

    const target = await newScratch();
    try {
      const restored = await restoreBackup({
        archivePath: file,
        targetUrl: target.url,
        targetDb: target.db,
        pgBinDir: null,
        serverMajor: SERVER_MAJOR,
        log: silentLogger,
      });
      expect(restored.tables).toEqual(tables);
      for (const key of tables) {
        expect({ key, n: await exactCount(target.db, key, snapshot) }).toEqual({ key, n: snapshot.tables[key]!.rows });
      }
      expect(await exactCount(t.db, 'public.users', snapshot)).toBe(snapshot.tables['public.users']!.rows + 1);
    } finally {
      await target.db.destroy();
    }
  });

  it('quotes weird names for pg_dump and restores them with their prerequisites', async () => {
    await sql`
      create extension if not exists citext;
      create type mood as enum ('happy', 'sad');
      create schema "Weird Schema";
      create table "Weird Schema"."Mixed ""Quoted"" Table" (id int primary key, feeling mood not null default 'happy', note citext);
      create table public."star*?.x" (id int);
      create table public."star" (id int);
      create table public."Ünïcödé_表" (id int);
      create table "Weird Schema".events (id int, at date not null) partition by range (at);
      create table "Weird Schema".events_2023 partition of "Weird Schema".events for values from ('2023-01-01') to ('2024-01-01');
      create table "Weird Schema".events_2024 partition of "Weird Schema".events for values from ('2024-01-01') to ('2025-01-01');
      insert into "Weird Schema"."Mixed ""Quoted"" Table" values (1, 'sad', 'Hi'), (2, 'happy', 'there');
      insert into public."star*?.x" values (1), (2);
      insert into public."star" values (1), (2), (3);
      insert into public."Ünïcödé_表" values (1);
      insert into "Weird Schema".events select g, date '2023-06-01' + g * 30 from generate_series(1, 10) g`.execute(t.db);
    const tables = await backupScope(
      t.db,
      ['Weird Schema.Mixed "Quoted" Table', 'public.star*?.x', 'public.Ünïcödé_表', 'Weird Schema.events'],
      'touched',
    );
    expect(tables).toContain('Weird Schema.events_2024');
    const { snapshot, held } = await takeSnapshot(t.db, { exactCountThreshold: 1000 }, (snapshotId) =>
      runBackup(options({ snapshotId, tables })),
    );
    expect(held!.status).toBe('verified');
    expect(held!.tables).toEqual(tables);
    // A run dumps its scope as its scope graph named the tables, without a lookup of its own: the same names reach pg_dump.
    const fromGraph = await runBackup(options({ tables, known: (await readScopeGraph(t.db)).existing }));
    expect(fromGraph.status).toBe('verified');
    expect(fromGraph.tables).toEqual(tables);

    const target = await newScratch();
    try {
      await restoreBackup({
        archivePath: path.join(evidenceDir, held!.path!),
        targetUrl: target.url,
        targetDb: target.db,
        prerequisitesFrom: new URL(t.url),
        pgBinDir: null,
        serverMajor: SERVER_MAJOR,
        log: silentLogger,
      });
      for (const key of tables)
        expect({ key, n: await exactCount(target.db, key, snapshot) }).toEqual({ key, n: snapshot.tables[key]!.rows });
      // `star*?.x` is a literal name: the lookalike `star` was not dumped.
      const star = await sql<{ n: number }>`select count(*)::int8 as n from pg_tables where tablename = 'star'`.execute(target.db);
      expect(star.rows[0]!.n).toBe(0);
    } finally {
      await target.db.destroy();
    }
  });

  it('creates missing schemas itself when no live database is given', async () => {
    const tables = await backupScope(t.db, ['Weird Schema.events'], 'touched');
    const record = await runBackup(options({ tables }));
    const target = await newScratch();
    try {
      const restored = await restoreBackup({
        archivePath: path.join(evidenceDir, record.path!),
        targetUrl: target.url,
        targetDb: target.db,
        tables: ['Weird Schema.events_2024'],
        pgBinDir: null,
        serverMajor: SERVER_MAJOR,
        log: silentLogger,
      });
      expect(restored.tables).toEqual(['Weird Schema.events_2024']);
      const rows = await sql<{ n: number }>`select count(*)::int8 as n from "Weird Schema".events_2023`.execute(target.db);
      expect(rows.rows[0]!.n).toBe(0);
      const rows24 = await sql<{ n: number }>`select count(*)::int8 as n from "Weird Schema".events_2024`.execute(target.db);
      expect(rows24.rows[0]!.n).toBeGreaterThan(0);
    } finally {
      await target.db.destroy();
    }
  });

  it('writes a directory archive with jobs > 1, hashed as its documented manifest', async () => {
    const tables = await backupScope(t.db, ['public.users'], 'touched');
    const { held } = await takeSnapshot(t.db, { exactCountThreshold: 1000 }, (snapshotId) =>
      runBackup(options({ snapshotId, tables, jobs: 2 })),
    );
    const record = held!;
    expect(record.format).toBe('directory');
    expect(record.path).toMatch(/\.dir$/);
    const dir = path.join(evidenceDir, record.path!);
    const manifest = await execa('sh', ['-c', 'LC_ALL=C ls | xargs sha256sum | sha256sum'], { cwd: dir });
    expect(record.sha256).toBe(manifest.stdout.split(' ')[0]);
    expect(record.bytes).toBe(readdirSync(dir).reduce((sum, f) => sum + statSync(path.join(dir, f)).size, 0));
  });

  it('full scope dumps every user table but safe_run', async () => {
    await sql`create schema safe_run; create table safe_run.chain_head (seq int)`.execute(t.db);
    const record = await runBackup(options({ scope: 'full' }));
    expect(record.status).toBe('verified');
    expect(record.tables).toEqual(expect.arrayContaining(['public.users', 'public.oidc_models', 'Weird Schema.events_2023']));
    expect(record.tables.some((k) => k.startsWith('safe_run.'))).toBe(false);
  });

  it("skips with scope 'none' and writes nothing", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'safe-run-none-'));
    try {
      const record = await runBackup(options({ scope: 'none', evidenceDir: dir, tables: ['public.users'] }));
      expect(record).toEqual(expect.objectContaining({ status: 'skipped', path: null, sha256: null, bytes: 0 }));
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails with exit 4 when a table in scope does not exist, instead of backing up less', async () => {
    const error = await runBackup(options({ tables: ['public.users', 'public.dropped_meanwhile'] })).catch((e: unknown) => e);
    expect((error as SafeRunError).exitCode).toBe(ExitCode.backupFailed);
    expect((error as SafeRunError).message).toContain('public.dropped_meanwhile');
  });

  it('fails with exit 4 when a table the scope graph named is dropped before the dump, instead of backing up less', async () => {
    await sql`create table public.gone_before_dump (id int)`.execute(t.db);
    const graph = await readScopeGraph(t.db);
    await sql`drop table public.gone_before_dump`.execute(t.db);
    const runId = `r${randomBytes(6).toString('hex')}`;
    const error = await runBackup(options({ runId, tables: ['public.gone_before_dump', 'public.users'], known: graph.existing })).catch(
      (e: unknown) => e,
    );
    expect((error as SafeRunError).exitCode).toBe(ExitCode.backupFailed);
    expect((error as SafeRunError).message).toMatch(/no matching tables.*gone_before_dump/);
    expect(existsSync(path.join(evidenceDir, 'backups', `${runId}.dump`))).toBe(false);
  });

  it('fails with exit 4 when the evidence directory cannot be created', async () => {
    const parentIsFile = path.join(evidenceDir, 'not-a-dir');
    writeFileSync(parentIsFile, 'x');
    const error = await runBackup(options({ evidenceDir: path.join(parentIsFile, 'evidence'), tables: ['public.users'] })).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SafeRunError);
    expect((error as SafeRunError).exitCode).toBe(ExitCode.backupFailed);
    expect((error as SafeRunError).message).toMatch(/ENOTDIR/);
  });

  it("fails with exit 4 and pg_dump's own words when pg_dump fails, leaving no partial file", async () => {
    const runId = 'r-locked';
    const locker = createDb(t.url, { maxConnections: 1 });
    try {
      // Someone's ALTER TABLE in progress: pg_dump must give up after --lock-wait-timeout.
      const error = await locker.transaction().execute(async (trx) => {
        await sql`lock table oidc_models in access exclusive mode`.execute(trx);
        return runBackup(options({ runId, tables: ['public.oidc_models'], lockWaitTimeoutMs: 200 })).catch((e: unknown) => e);
      });
      expect(error).toBeInstanceOf(SafeRunError);
      expect((error as SafeRunError).exitCode).toBe(ExitCode.backupFailed);
      expect((error as SafeRunError).message).toMatch(/pg_dump failed.*lock/is);
      expect((error as SafeRunError).hint).toContain('did not run');
      expect(existsSync(path.join(evidenceDir, 'backups', `${runId}.dump`))).toBe(false);
    } finally {
      await locker.destroy();
    }
  });
});
