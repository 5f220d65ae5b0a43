import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { dbnameConninfo, pgChildEnv } from '../src/backup/child-env.js';
import { pgDumpArgs, tablePattern } from '../src/backup/pg-dump-args.js';
import { parsePgVersion, probePgToolsEarly, resolvePgTool } from '../src/backup/pg-tools.js';
import { debianBinDirs } from '../src/backup/pg-bin-dirs.js';
import { ExitCode, SafeRunError } from '../src/errors.js';

describe('resolvePgTool', () => {
  let fakeDir: string;
  const savedCache = process.env.XDG_CACHE_HOME;
  beforeAll(() => {
    // Not a mock of pg_dump's behaviour: only its --version answer, to test the selection.
    fakeDir = mkdtempSync(path.join(os.tmpdir(), 'safe-run-fake-pg-'));
    writeFileSync(path.join(fakeDir, 'pg_dump'), '#!/bin/sh\necho "pg_dump (PostgreSQL) 9.6.0"\n');
    chmodSync(path.join(fakeDir, 'pg_dump'), 0o755);
    // The versions it remembers go to this test's own cache, not the user's.
    process.env.XDG_CACHE_HOME = path.join(fakeDir, 'cache');
  });
  afterAll(() => {
    if (savedCache === undefined) delete process.env.XDG_CACHE_HOME;
    else process.env.XDG_CACHE_HOME = savedCache;
    rmSync(fakeDir, { recursive: true, force: true });
  });

  it('parses the version line of every packaging', () => {
    expect(parsePgVersion('pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)')).toEqual({ version: '15.18', major: 15 });
    expect(parsePgVersion('pg_restore (PostgreSQL) 9.6.0')).toEqual({ version: '9.6.0', major: 9 });
    expect(parsePgVersion('pg_dump (PostgreSQL) 17beta1')).toEqual({ version: '17', major: 17 });
    expect(parsePgVersion('not postgres')).toBeNull();
  });

  it('finds a pg_dump at least as new as the server', async () => {
    const tool = await resolvePgTool('pg_dump', 15);
    expect(tool.major).toBeGreaterThanOrEqual(15);
    expect(path.basename(tool.path)).toBe('pg_dump');
  });

  it('rejects a too-old pg_dump with exit 4 when nothing else fits, naming what it found', async () => {
    const error = await resolvePgTool('pg_dump', 15, fakeDir, [fakeDir]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SafeRunError);
    const e = error as SafeRunError;
    expect(e.exitCode).toBe(ExitCode.backupFailed);
    expect(e.message).toContain('PostgreSQL 15');
    expect(e.message).toContain('9.6.0');
    expect(e.message).toContain(fakeDir);
    expect(e.hint).toContain('postgresql-client-15');
    expect(e.hint).toContain('pgBinDir');
  });

  it('skips the too-old configured one for a newer candidate', async () => {
    const dirs = [fakeDir, ...debianBinDirs(), '/usr/bin'];
    const tool = await resolvePgTool('pg_dump', 15, fakeDir, dirs);
    expect(tool.path).not.toContain(fakeDir);
    expect(tool.major).toBeGreaterThanOrEqual(15);
  });

  it("goes past Debian's pg_wrapper on PATH to the program it would start, and keeps it as the last resort", async () => {
    // Debian's /usr/bin/pg_dump is a symlink to a Perl script named pg_wrapper; this one only answers --version.
    const onPath = path.join(fakeDir, 'path');
    const real = path.join(fakeDir, 'real');
    mkdirSync(onPath);
    mkdirSync(real);
    writeFileSync(path.join(fakeDir, 'pg_wrapper'), '#!/bin/sh\necho "pg_dump (PostgreSQL) 16.2"\n');
    chmodSync(path.join(fakeDir, 'pg_wrapper'), 0o755);
    symlinkSync(path.join(fakeDir, 'pg_wrapper'), path.join(onPath, 'pg_dump'));
    writeFileSync(path.join(real, 'pg_dump'), '#!/bin/sh\necho "pg_dump (PostgreSQL) 16.2"\n');
    chmodSync(path.join(real, 'pg_dump'), 0o755);
    expect((await resolvePgTool('pg_dump', 15, null, [onPath, real])).path).toBe(path.join(real, 'pg_dump'));
    expect((await resolvePgTool('pg_dump', 15, null, [onPath])).path).toBe(path.join(onPath, 'pg_dump'));
    // What it starts depends on the installed clients, not on its own file: its answer is never kept.
    expect(readFileSync(path.join(process.env.XDG_CACHE_HOME!, 'safe-run', 'pg-tools.json'), 'utf8')).not.toContain('pg_wrapper');
  });

  it("answers the run's backup from the probes started while it connected, without asking the programs again", async () => {
    // Each program notes every time it is started.
    const dir = path.join(fakeDir, 'counted');
    mkdirSync(dir);
    for (const tool of ['pg_dump', 'pg_restore']) {
      writeFileSync(path.join(dir, tool), `#!/bin/sh\necho started >> "$0.calls"\necho "${tool} (PostgreSQL) 16.2"\n`);
      chmodSync(path.join(dir, tool), 0o755);
    }
    probePgToolsEarly(dir);
    const [dump, restore] = await Promise.all([resolvePgTool('pg_dump', 15, dir), resolvePgTool('pg_restore', 15, dir)]);
    await resolvePgTool('pg_dump', 15, dir);
    expect([dump.version, restore.version]).toEqual(['16.2', '16.2']);
    expect(readFileSync(path.join(dir, 'pg_dump.calls'), 'utf8')).toBe('started\n');
    expect(readFileSync(path.join(dir, 'pg_restore.calls'), 'utf8')).toBe('started\n');
  });

  it('remembers what a program said between commands, and asks again once the program is replaced', async () => {
    const dir = path.join(fakeDir, 'remembered');
    mkdirSync(dir);
    const program = path.join(dir, 'pg_dump');
    const install = (version: string): void => {
      writeFileSync(program, `#!/bin/sh\necho started >> "$0.calls"\necho "pg_dump (PostgreSQL) ${version}"\n`);
      chmodSync(program, 0o755);
    };
    // Each command is its own process, as each safe-run command is: nothing is shared but the cache directory.
    const command = async (): Promise<string> => {
      const module = path.join(path.dirname(fileURLToPath(import.meta.url)), '../src/backup/pg-tools.js');
      const code = `const { resolvePgTool } = await import(${JSON.stringify(module)}); console.log((await resolvePgTool('pg_dump', 15, ${JSON.stringify(dir)})).version);`;
      const result = await execa(process.execPath, ['--input-type=module', '-e', code], {
        env: { XDG_CACHE_HOME: process.env.XDG_CACHE_HOME },
      });
      return result.stdout;
    };
    install('16.2');
    expect([await command(), await command()]).toEqual(['16.2', '16.2']);
    expect(readFileSync(`${program}.calls`, 'utf8')).toBe('started\n');
    install('17.1');
    expect(await command()).toBe('17.1');
    expect(readFileSync(`${program}.calls`, 'utf8')).toBe('started\nstarted\n');
  });
});

describe('pg_dump argv and environment', () => {
  const url = new URL('postgres://backup_role:s3cr%40t-pw@db.internal:6543/app%20db?sslmode=require');
  const weird = [
    { schema: 'Weird Schema', name: 'Mixed "Quoted" Table' },
    { schema: 'public', name: 'star*?.x' },
    { schema: 'public', name: 'Ünïcödé_表' },
  ];

  it('keeps every credential and the host out of argv', () => {
    for (const jobs of [1, 4]) {
      const args = pgDumpArgs({
        scope: 'touched',
        tables: weird,
        snapshotId: '00000003-0000001B-1',
        compress: 6,
        jobs,
        lockWaitTimeoutMs: 10_000,
        output: '/tmp/x.dir',
      });
      const line = args.join(' ');
      for (const secret of ['s3cr', 'backup_role', 'db.internal', '6543', 'postgres://']) expect(line).not.toContain(secret);
      expect(args).toEqual(
        expect.arrayContaining(['--snapshot=00000003-0000001B-1', '--lock-wait-timeout=10000', '--no-password', '--compress=6']),
      );
    }
    expect(dbnameConninfo(url)).toBe("dbname='app db'");
  });

  it('passes the credentials in PG* variables, and nothing inherited that could redirect it', () => {
    const saved = process.env.PGDATABASE;
    process.env.PGDATABASE = 'somewhere_else';
    try {
      const env = pgChildEnv(url, 'safe-run backup');
      expect(env).toEqual(
        expect.objectContaining({
          PGHOST: 'db.internal',
          PGPORT: '6543',
          PGUSER: 'backup_role',
          PGPASSWORD: 's3cr@t-pw',
          PGDATABASE: 'app db',
          PGSSLMODE: 'require',
        }),
      );
      const inherited = Object.keys(env).filter((k) => !k.startsWith('PG'));
      expect(inherited.every((k) => ['PATH', 'HOME', 'LANG', 'LC_ALL', 'LC_MESSAGES', 'TZ'].includes(k))).toBe(true);
    } finally {
      if (saved === undefined) delete process.env.PGDATABASE;
      else process.env.PGDATABASE = saved;
    }
  });

  it('chooses the format from jobs and the tables from the scope', () => {
    const custom = pgDumpArgs({ scope: 'touched', tables: weird, snapshotId: null, compress: 0, jobs: 1, lockWaitTimeoutMs: 1 });
    expect(custom[0]).toBe('--format=custom');
    expect(custom.some((a) => a.startsWith('--file'))).toBe(false);
    expect(
      pgDumpArgs({ scope: 'full', tables: [], snapshotId: null, compress: 0, jobs: 1, lockWaitTimeoutMs: 1, output: '/e/b/r.dump' }),
    ).toContain('--file=/e/b/r.dump');
    expect(custom.some((a) => a.startsWith('--snapshot'))).toBe(false);
    expect(custom.filter((a) => a.startsWith('--table='))).toEqual([
      '--table="Weird Schema"."Mixed ""Quoted"" Table"',
      '--table="public"."star*?.x"',
      '--table="public"."Ünïcödé_表"',
    ]);
    const parallel = pgDumpArgs({
      scope: 'full',
      tables: [],
      snapshotId: 'S',
      compress: 6,
      jobs: 3,
      lockWaitTimeoutMs: 1,
      output: '/e/b/r.dir',
    });
    expect(parallel.slice(0, 3)).toEqual(['--format=directory', '--jobs=3', '--file=/e/b/r.dir']);
    expect(parallel).toContain('--exclude-schema=safe_run');
    expect(parallel.some((a) => a.startsWith('--table'))).toBe(false);
    expect(tablePattern({ schema: 'a', name: 'b' })).toBe('"a"."b"');
  });
});
