import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseJson, runCli } from './helpers/cli.js';
import { SCRIPTS_DIR } from './helpers/constants.js';

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
    writeFileSync(path.join(cwd, 'safe-run.config.ts'), `const dir: string = ${JSON.stringify(SCRIPTS_DIR())};\nexport default { scriptsDir: dir };\n`);
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
    for (const command of ['list', 'verify', 'keygen', 'check', 'blame', 'report', 'show', 'log', 'snapshot']) expect(help.stdout).toContain(`safe-run ${command}`);
    expect((await runCli(['--version'], { cwd })).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});
