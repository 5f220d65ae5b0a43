import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseJson, runCli } from './helpers/cli.js';
import { SCRIPTS_DIR } from './helpers/constants.js';
import { reportError } from '../src/commands/report-error.js';
import { ExitCode, ExitWith, SafeRunError } from '../src/errors.js';

/** Bad input gets one readable line (plus the next step), exit 2, and no stack trace. */
describe('CLI input errors', () => {
  let cwd: string;
  beforeEach(() => {
    cwd = mkdtempSync(path.join(os.tmpdir(), 'safe-run-cli-'));
  });
  afterEach(() => rmSync(cwd, { recursive: true, force: true }));

  const expectUsageError = (result: { exitCode: number; stderr: string }, text: string): void => {
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain(text);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(result.stderr.trim().split('\n').length).toBeLessThanOrEqual(2);
  };

  it('rejects a malformed config file, naming the file', async () => {
    writeFileSync(path.join(cwd, 'safe-run.config.json'), '{ "scriptsDir": "scripts", }');
    expectUsageError(await runCli(['list'], { cwd }), 'safe-run.config.json: malformed JSON');
  });

  it('rejects unknown config keys and bad values, naming every key and the file', async () => {
    writeFileSync(path.join(cwd, 'safe-run.config.json'), JSON.stringify({ scriptDir: 'x', backup: { scope: 'some', jobz: 2 } }));
    const result = await runCli(['list'], { cwd });
    expectUsageError(result, 'safe-run.config.json');
    expect(result.stderr).toContain('unknown key "scriptDir"');
    expect(result.stderr).toContain('unknown key "backup.jobz"');
    expect(result.stderr).toContain('"backup.scope"');
  });

  it('loads a TypeScript config', async () => {
    writeFileSync(
      path.join(cwd, 'safe-run.config.ts'),
      `const dir: string = ${JSON.stringify(SCRIPTS_DIR())};\nexport default { scriptsDir: dir };\n`,
    );
    const result = await runCli(['list', '--json'], { cwd });
    expect(result.exitCode).toBe(0);
    expect(parseJson<{ name: string }[]>(result).map((s) => s.name)).toContain('cleanup-invalid-sessions');
  });

  it('rejects a database URL that is not a URL', async () => {
    writeFileSync(path.join(cwd, 'safe-run.config.json'), JSON.stringify({ scriptsDir: SCRIPTS_DIR() }));
    expectUsageError(await runCli(['cleanup-invalid-sessions', '--db', 'not a url'], { cwd }), 'Not a database URL');
  });

  it('rejects an unknown flag and a missing command', async () => {
    expectUsageError(await runCli(['list', '--frobnicate'], { cwd }), 'Unknown argument: frobnicate');
    expectUsageError(await runCli([], { cwd }), 'Name a script to run or a command');
  });

  it('says an unreachable database is unreachable, without echoing the password', async () => {
    writeFileSync(path.join(cwd, 'safe-run.config.json'), JSON.stringify({ scriptsDir: SCRIPTS_DIR(), evidenceDir: path.join(cwd, 'ev') }));
    const result = await runCli(['cleanup-invalid-sessions', '--db', 'postgres://app:hunter2@127.0.0.1:1/app'], { cwd });
    expectUsageError(result, 'Cannot connect to postgres://app@127.0.0.1:1/app: connection refused');
    expect(result.stderr + result.stdout).not.toContain('hunter2');
  });

  it('prints one JSON document for an error with --json', async () => {
    const result = await runCli(['no-such-script', '--json'], { cwd, env: { DATABASE_URL: 'postgres://x@127.0.0.1:1/x' } });
    expect(result.exitCode).toBe(2);
    expect(parseJson<{ error: { exitCode: number } }>(result).error.exitCode).toBe(2);
  });

  it('shows --help and --version', async () => {
    const help = await runCli(['--help'], { cwd });
    expect(help.exitCode).toBe(0);
    for (const command of ['list', 'verify', 'keygen', 'check', 'blame', 'report', 'show', 'log', 'snapshot', 'ack', 'init'])
      expect(help.stdout).toContain(`safe-run ${command}`);
    expect((await runCli(['--version'], { cwd })).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});

/** Exit 1 means "the script failed"; an error safe-run did not expect is a bug, exit 70, never 1. */
describe('internal errors', () => {
  let cwd: string;
  beforeEach(() => {
    cwd = mkdtempSync(path.join(os.tmpdir(), 'safe-run-cli-'));
  });
  afterEach(() => rmSync(cwd, { recursive: true, force: true }));

  // A config whose value throws when read gets past loading (jiti only imports the file) and
  // reaches validation, which does not expect a getter to throw: a genuine unguarded path.
  const writeThrowingConfig = (): void =>
    writeFileSync(path.join(cwd, 'safe-run.config.ts'), 'export default { get scriptsDir(): string { throw new TypeError("boom"); } };\n');

  it('exits 70 with one line saying it is a bug, and the stack only with --verbose', async () => {
    writeThrowingConfig();
    const result = await runCli(['list'], { cwd });
    expect(result.exitCode).toBe(70);
    expect(result.stderr.trim()).toBe(
      'safe-run: internal error: boom. This is a bug in safe-run; run again with --verbose for the stack trace',
    );
    const verbose = await runCli(['list', '--verbose'], { cwd });
    expect(verbose.exitCode).toBe(70);
    expect(verbose.stderr).toContain('internal error: boom. This is a bug in safe-run');
    expect(verbose.stderr).toMatch(/\n\s+at /);
  });

  it('reports 70 in the --json error document', async () => {
    writeThrowingConfig();
    const result = await runCli(['list', '--json'], { cwd });
    expect(result.exitCode).toBe(70);
    expect(parseJson<{ error: { exitCode: number; message: string } }>(result).error).toMatchObject({ exitCode: 70 });
  });

  it('lists 70 in the --help epilogue', async () => {
    expect((await runCli(['--help'], { cwd })).stdout).toContain('70 internal error');
  });

  describe('reportError', () => {
    // The handler writes to the process's stderr; capture it instead of printing into jest's output.
    const write = process.stderr.write.bind(process.stderr);
    let captured = '';
    beforeEach(() => {
      captured = '';
      process.stderr.write = ((chunk: string | Uint8Array) => {
        captured += String(chunk);
        return true;
      }) as typeof process.stderr.write;
    });
    afterEach(() => {
      process.stderr.write = write;
    });
    const printed = (): string => captured;

    it.each([
      ['a SafeRunError keeps its code', new SafeRunError('bad', ExitCode.guardViolation), 3],
      ['ExitWith passes its code through', new ExitWith(42), 42],
      ['a TypeError is internal', new TypeError('x is undefined'), 70],
      ['a thrown string is internal', 'just a string', 70],
      ['undefined is internal', undefined, 70],
    ])('%s', (_name, error, code) => {
      expect(reportError(error, { json: false, verbose: false })).toBe(code);
    });

    it('keeps a multi-line message on one line', () => {
      reportError(new Error('first\n  second.'), { json: false, verbose: false });
      expect(printed()).toBe(
        'safe-run: internal error: first second. This is a bug in safe-run; run again with --verbose for the stack trace\n',
      );
    });
  });
});
