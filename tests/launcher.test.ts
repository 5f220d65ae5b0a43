import { execa, execaSync } from 'execa';
import { chownSync, copyFileSync, chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { rootCertificates } from 'node:tls';
import { sql } from 'kysely';
import { createDb } from '../src/db/connection.js';
import { withExtraCa } from '../src/db/extra-ca.js';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../support/throwaway/postgres.js';
import { BIN_PATH as BIN, CLI_PATH, parseJson } from './helpers/cli.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';

/**
 * A certificate authority of our own and a server certificate it signed for 127.0.0.1: what a
 * company CA looks like to a client that only trusts the public ones.
 */
function makeCertificates(dir: string): { ca: string; cert: string; key: string } {
  const file = (name: string): string => path.join(dir, name);
  const openssl = (args: string[]): void => void execaSync('openssl', args, { cwd: dir });
  openssl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=safe-run test CA',
    '-keyout',
    file('ca.key'),
    '-out',
    file('ca.pem'),
  ]);
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', file('server.key'), '-out', file('server.csr')]);
  writeFileSync(file('san.ext'), 'subjectAltName = IP:127.0.0.1, DNS:localhost\n');
  openssl([
    'x509',
    '-req',
    '-in',
    file('server.csr'),
    '-CA',
    file('ca.pem'),
    '-CAkey',
    file('ca.key'),
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    file('san.ext'),
    '-out',
    file('server.crt'),
  ]);
  return { ca: file('ca.pem'), cert: file('server.crt'), key: file('server.key') };
}

describe('bin/safe-run, the command npm links: its start-up, and NODE_EXTRA_CA_CERTS only for TLS to PostgreSQL', () => {
  let dir: string;
  let server: ThrowawayPostgres;
  let tlsUrl: string;
  let ca: string;
  const savedExtra = process.env.SAFE_RUN_EXTRA_CA_CERTS;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'safe-run-extra-ca-'));
    const certs = makeCertificates(dir);
    ca = certs.ca;
    server = await startThrowawayPostgres({
      settings: { ssl: 'on', ssl_cert_file: "'server.crt'", ssl_key_file: "'server.key'" },
      beforeStart: ({ dataDir }) => {
        // The server reads them from its data directory, as its own user, the key private.
        const owner = statSync(dataDir);
        for (const [from, name] of [
          [certs.cert, 'server.crt'],
          [certs.key, 'server.key'],
        ] as const) {
          const to = path.join(dataDir, name);
          copyFileSync(from, to);
          chownSync(to, owner.uid, owner.gid);
          chmodSync(to, 0o600);
        }
      },
    });
    tlsUrl = `${server.url}?sslmode=verify-full`;
  }, 60_000);

  afterAll(async () => {
    if (savedExtra === undefined) delete process.env.SAFE_RUN_EXTRA_CA_CERTS;
    else process.env.SAFE_RUN_EXTRA_CA_CERTS = savedExtra;
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  afterEach(() => {
    delete process.env.SAFE_RUN_EXTRA_CA_CERTS;
  });

  it('bin/safe-run leaves the file to safe-run, so Node never reads it at start-up', async () => {
    // Node warns at start when it cannot read the file: proof that it tried.
    const direct = await execa(process.execPath, [CLI_PATH, '--version'], {
      env: { NODE_EXTRA_CA_CERTS: '/nonexistent.pem' },
      reject: false,
    });
    expect(direct.stderr).toContain('Ignoring extra certs from `/nonexistent.pem`');
    const launched = await execa(BIN, ['--version'], { env: { NODE_EXTRA_CA_CERTS: '/nonexistent.pem' }, reject: false });
    expect(launched).toMatchObject({ exitCode: 0, stderr: '' });
    expect(launched.stdout).toMatch(/^\d+\.\d+\.\d+$/);
    // Run through a symlink, as npm links it onto PATH.
    const link = path.join(dir, 'safe-run');
    execaSync('ln', ['-s', BIN, link]);
    expect((await execa(link, ['--version'])).stdout).toBe(launched.stdout);
  });

  it('bin/safe-run in a checkout that was never built says what is missing and how to build it (exit 2)', async () => {
    const checkout = path.join(dir, 'unbuilt');
    mkdirSync(path.join(checkout, 'bin'), { recursive: true });
    copyFileSync(BIN, path.join(checkout, 'bin', 'safe-run'));
    chmodSync(path.join(checkout, 'bin', 'safe-run'), 0o755);
    const result = await execa(path.join(checkout, 'bin', 'safe-run'), ['--version'], { reject: false });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toBe(
      `safe-run: not built yet: ${checkout}/dist/src/cli.js is missing\n  next: cd ${checkout} && npm ci && npm run build`,
    );
  });

  it('bin/safe-run starts Node with the old generation a command fills anyway', async () => {
    const hook = path.join(dir, 'exec-argv.cjs');
    const seen = path.join(dir, 'exec-argv.json');
    writeFileSync(hook, `require('node:fs').writeFileSync(${JSON.stringify(seen)}, JSON.stringify(process.execArgv));\n`);
    expect((await execa(BIN, ['--version'], { env: { NODE_OPTIONS: `--require=${hook}` } })).exitCode).toBe(0);
    expect(JSON.parse(readFileSync(seen, 'utf8'))).toEqual(expect.arrayContaining(['--initial-old-space-size=64']));
  });

  it('connects with verify-full to a server whose CA only NODE_EXTRA_CA_CERTS names, through bin/safe-run', async () => {
    const env = { SAFE_RUN_EVIDENCE_DIR: path.join(dir, 'evidence'), SAFE_RUN_SIGNING_KEY: path.join(dir, 'signing.key') };
    expect((await execa(BIN, ['keygen'], { cwd: dir, env, reject: false })).exitCode).toBe(0);
    const snapshot = (extra: string | undefined) =>
      execa(BIN, ['snapshot', '--json', '--db', tlsUrl], { cwd: dir, env: { ...env, NODE_EXTRA_CA_CERTS: extra }, reject: false });

    const trusted = await snapshot(ca);
    expect(trusted.exitCode).toBe(0);
    expect(parseJson<{ database: string }>({ ...trusted, exitCode: trusted.exitCode ?? -1 }).database).toContain('127.0.0.1');

    // Without it the certificate is not trusted: one clear line, exit 2, nothing recorded.
    const untrusted = await snapshot(undefined);
    expect(untrusted.exitCode).toBe(2);
    expect(untrusted.stderr).toMatch(/Cannot connect to .*certificate/);
    expect(untrusted.stderr).toContain('sslrootcert=<CA file>');
    expect(untrusted.stderr).not.toMatch(/\n\s+at /);
  });

  it('adds the file to Node’s own authorities only for a pool that verifies with them', async () => {
    const base = { connectionString: tlsUrl, max: 1 };
    expect(withExtraCa(base)).toBe(base); // no variable: untouched
    process.env.SAFE_RUN_EXTRA_CA_CERTS = ca;
    const verifying = withExtraCa(base);
    expect(verifying.connectionString).toBeUndefined();
    expect(verifying).toMatchObject({ host: '127.0.0.1', port: String(server.port), max: 1 });
    const cas = (verifying.ssl as { ca: string[] }).ca;
    expect(cas).toHaveLength(rootCertificates.length + 1);
    expect(cas.at(-1)).toContain('BEGIN CERTIFICATE');
    // No TLS, no certificate check, or the URL's own sslrootcert: nothing to add.
    for (const url of [server.url, `${server.url}?sslmode=disable`, `${server.url}?sslmode=no-verify`, `${server.url}?sslrootcert=${ca}`]) {
      const config = { connectionString: url };
      expect(withExtraCa(config)).toBe(config);
    }

    const db = createDb(tlsUrl, { maxConnections: 1 });
    try {
      const { rows } = await sql<{ ssl: boolean }>`select ssl from pg_stat_ssl where pid = pg_backend_pid()`.execute(db);
      expect(rows[0]?.ssl).toBe(true);
    } finally {
      await db.destroy();
    }
  });
});

describe('the start-up snapshot (src/startup-snapshot.ts): bin/safe-run starts the CLI from it when it fits', () => {
  let dir: string;
  let t: TestDatabase;
  let env: Record<string, string>;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'safe-run-startup-'));
    t = await createTestDatabase('startup');
    env = {
      SAFE_RUN_EVIDENCE_DIR: path.join(dir, 'evidence'),
      SAFE_RUN_SIGNING_KEY: path.join(dir, 'signing.key'),
      DATABASE_URL: t.url,
    };
    expect((await execa(BIN, ['keygen'], { cwd: dir, env })).exitCode).toBe(0);
  });

  afterAll(async () => {
    await t?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A snapshot's JSON and how the process started (the `--verbose` config line). */
  const snapshotWith = async (command: string, args: readonly string[]): Promise<{ startedFrom: string; tables: unknown }> => {
    const result = await execa(command, [...args, 'snapshot', '--json', '--verbose', '--log-format', 'json'], {
      cwd: dir,
      env,
      reject: false,
    });
    expect(result.exitCode).toBe(0);
    const config = result.stderr
      .split('\n')
      .map((line) => JSON.parse(line) as { msg: string; startedFrom?: string })
      .find((line) => line.msg === 'config');
    const { tables } = parseJson<{ tables: Record<string, { rows: number }> }>({ ...result, exitCode: 0 });
    return { startedFrom: config?.startedFrom ?? '(no config line)', tables: Object.keys(tables).sort() };
  };

  it('starts from the snapshot, and records what a start from the modules records', async () => {
    const fromSnapshot = await snapshotWith(BIN, []);
    const fromModules = await snapshotWith(process.execPath, [CLI_PATH]);
    expect(fromSnapshot.startedFrom).toBe('snapshot');
    expect(fromModules.startedFrom).toBe('modules');
    expect(fromSnapshot.tables).toEqual(fromModules.tables);
    // Both entries are in one log, signed and chained.
    expect((await execa(BIN, ['verify'], { cwd: dir, env })).exitCode).toBe(0);
  });

  it('loads its modules instead when the blob was built in another checkout or by another Node', async () => {
    const root = path.resolve(path.dirname(BIN), '..');
    const copy = path.join(dir, 'moved');
    mkdirSync(path.join(copy, 'dist', 'src'), { recursive: true });
    execaSync('cp', ['-r', path.join(root, 'dist', 'bundle'), path.join(copy, 'dist', 'bundle')]);
    copyFileSync(path.join(root, 'dist', 'src', 'cli.js'), path.join(copy, 'dist', 'src', 'cli.js'));
    copyFileSync(path.join(root, 'package.json'), path.join(copy, 'package.json'));
    mkdirSync(path.join(copy, 'bin'));
    copyFileSync(BIN, path.join(copy, 'bin', 'safe-run'));
    chmodSync(path.join(copy, 'bin', 'safe-run'), 0o755);
    execaSync('ln', ['-s', path.join(root, 'node_modules'), path.join(copy, 'node_modules')]);
    const moved = path.join(copy, 'bin', 'safe-run');

    // The blob names the build it was made in: a moved checkout does not use it.
    expect((await snapshotWith(moved, [])).startedFrom).toBe('modules');
    // Here again, but made by a Node of another size or date.
    const id = path.join(copy, 'dist', 'bundle', 'cli.blob.id');
    const [, node] = readFileSync(id, 'utf8').split('\n');
    writeFileSync(id, `${path.join(copy, 'dist', 'bundle')}\n${node}\n1 1\n`);
    expect((await snapshotWith(moved, [])).startedFrom).toBe('modules');
  });
});
