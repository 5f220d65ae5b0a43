import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DumpProgress, dumpErrors, parseDumpLine } from '../src/backup/dump-progress.js';
import { closest } from '../src/commands/did-you-mean.js';
import { commandFor, commandNames, DEFAULT_COMMAND } from '../src/commands/registry.js';
import { formatLogLine } from '../src/log-line.js';
import { createProgress, writeAboveProgress } from '../src/progress.js';
import { PassThrough } from 'node:stream';
import { CLI_PATH, parseJson, runCli } from './helpers/cli.js';
import { SCRIPTS_DIR } from './helpers/constants.js';
import { reportError, whatIsSafe } from '../src/commands/report-error.js';
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
    // The message, what is safe (where certain) and the next step: nothing more.
    expect(result.stderr.trim().split('\n').length).toBeLessThanOrEqual(3);
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

  it('rejects an unknown flag, a missing command, and a command without its argument', async () => {
    expectUsageError(await runCli(['list', '--frobnicate'], { cwd }), 'Unknown argument: frobnicate');
    expectUsageError(await runCli([], { cwd }), 'Name a script to run or a command');
    expectUsageError(await runCli(['blame'], { cwd }), 'Missing <table>. Usage: safe-run blame <table>');
    expectUsageError(await runCli(['restore'], { cwd }), 'Missing <run>. Usage: safe-run restore <run>');
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

    it('says what is safe only where it is certain: read-only commands, and a guarded run stopped before its commit', () => {
      expect(whatIsSafe('show', ExitCode.usage)).toMatch(/^nothing was changed: `show` only reads/);
      expect(whatIsSafe('check', ExitCode.auditFailed)).toMatch(/^nothing was changed/);
      for (const code of [ExitCode.usage, ExitCode.backupFailed, ExitCode.locked]) {
        expect(whatIsSafe('run', code)).toMatch(/^nothing was committed/);
        expect(whatIsSafe('undo', code)).toMatch(/^nothing was committed/);
      }
      // After COMMIT a run can still fail to append run.post (exit 5): it must not claim nothing changed.
      expect(whatIsSafe('run', ExitCode.auditFailed)).toBeNull();
      expect(whatIsSafe('run', ExitCode.internal)).toBeNull();
      expect(whatIsSafe('exec', ExitCode.usage)).toBeNull();
      expect(whatIsSafe('prune', ExitCode.usage)).toBeNull();
      expect(whatIsSafe(undefined, ExitCode.usage)).toBeNull();
    });

    it('prints the safe line between the message and the next step', () => {
      reportError(new SafeRunError('No run x.', ExitCode.usage, 'Use safe-run log.'), { json: false, verbose: false, command: 'show' });
      expect(printed()).toBe(
        'safe-run: No run x.\n  safe: nothing was changed: `show` only reads the database and the evidence.\n  next: Use safe-run log.\n',
      );
    });

    it('keeps a multi-line message on one line', () => {
      reportError(new Error('first\n  second.'), { json: false, verbose: false });
      expect(printed()).toBe(
        'safe-run: internal error: first second. This is a bug in safe-run; run again with --verbose for the stack trace\n',
      );
    });
  });
});

/**
 * What a command imports decides its start-up. A loader hook records every module the CLI
 * resolves (ESM imports) and requires (CommonJS), so these tests name the heavy modules a
 * command must not load, without timing anything. The bin runs the bundle: each bundle file
 * it loads counts as the modules inside it (the bundle's meta.json says which).
 */
describe('start-up loads only what the command needs', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'safe-run-trace-'));
    writeFileSync(
      path.join(dir, 'hooks.mjs'),
      `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(process.env.SAFE_RUN_TRACE, r.url + '\\n');
  return r;
}\n`,
    );
    writeFileSync(
      path.join(dir, 'register.mjs'),
      `import Module, { register } from 'node:module';
import { appendFileSync } from 'node:fs';
const load = Module._load;
Module._load = function (request, ...rest) { appendFileSync(process.env.SAFE_RUN_TRACE, 'require:' + request + '\\n'); return load.call(this, request, ...rest); };
register('./hooks.mjs', import.meta.url);\n`,
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const ROOT = path.resolve(path.dirname(CLI_PATH), '../..');
  const BUNDLE = path.join(ROOT, 'dist/bundle');
  /** The source modules inside the bundle files of a trace, one absolute path a line. */
  const insideBundleFiles = (trace: string): string => {
    // After `npx tsc` alone the bin is tsc's CLI: only the bundle test below fails then.
    if (!existsSync(path.join(BUNDLE, 'meta.json'))) return '';
    const { outputs } = JSON.parse(readFileSync(path.join(BUNDLE, 'meta.json'), 'utf8')) as {
      outputs: Record<string, { inputs: Record<string, unknown> }>;
    };
    const urls = trace.split('\n').filter((line) => line.startsWith(pathToFileURL(BUNDLE).href));
    const inputs = urls.flatMap((url) => Object.keys(outputs[path.relative(ROOT, fileURLToPath(url))]?.inputs ?? {}));
    return inputs.map((input) => `${path.join(ROOT, input)}\n`).join('');
  };

  const loaded = async (args: readonly string[], cwd: string): Promise<{ modules: string; files: string; stdout: string }> => {
    const trace = path.join(dir, `trace-${args.join('-')}.txt`);
    writeFileSync(trace, '');
    // Traced through the module loader: a start from the snapshot loads no module at all.
    const result = await runCli(args, {
      cwd,
      fromModules: true,
      env: {
        SAFE_RUN_TRACE: trace,
        NODE_OPTIONS: `--import=${pathToFileURL(path.join(dir, 'register.mjs')).href}`,
        XDG_CACHE_HOME: path.join(dir, 'cache'),
      },
    });
    expect(result).toMatchObject({ exitCode: 0, stderr: '' });
    const files = readFileSync(trace, 'utf8');
    return { modules: files + insideBundleFiles(files), files, stdout: result.stdout };
  };
  const COMMAND_MODULES = /commands\/(context|run|list|verify|keygen|snapshot|check|log|show|blame|report|doctor|restore|exec)\.[jt]s/;
  const HEAVY = [
    '/node_modules/kysely/',
    '/node_modules/pg/',
    '/node_modules/zod/',
    // Required by its emscripten module's path (src/guard/pg-parser.ts), so any mention counts.
    'libpg-query',
    '/node_modules/execa/',
    'pino',
  ];

  it('--version loads neither yargs nor any command', async () => {
    const { modules, stdout } = await loaded(['--version'], dir);
    expect(stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    for (const name of [...HEAVY, '/node_modules/yargs/']) expect(modules).not.toContain(name);
    expect(modules).not.toMatch(COMMAND_MODULES);
  });

  it('runs the bundle: yargs and zod inside its files, no module file read from node_modules or tsc output', async () => {
    const cwd = mkdtempSync(path.join(dir, 'bundle-'));
    writeFileSync(path.join(cwd, 'safe-run.config.json'), JSON.stringify({ scriptsDir: SCRIPTS_DIR() }));
    const { modules, files, stdout } = await loaded(['list'], cwd);
    expect(stdout).toContain('cleanup-invalid-sessions');
    for (const name of ['/node_modules/yargs/', '/node_modules/zod/', '/src/commands/list.']) expect(modules).toContain(name);
    // English only: zod's other languages are not in the bundle (support/build/bundle.ts).
    expect(modules).toContain('/node_modules/zod/v4/locales/en.js');
    expect(modules).not.toContain('/node_modules/zod/v4/locales/fr.js');
    const read = files.split('\n').filter((url) => url.startsWith('file:'));
    expect(read).toContain(pathToFileURL(path.join(BUNDLE, 'cli.js')).href);
    // Only the bin itself is tsc's output; every other file is the bundle's. jiti is resolved,
    // not loaded: the script child's read allow-list is the directory it is installed in.
    const outside = read.filter((url) => !url.startsWith(pathToFileURL(BUNDLE).href) && !url.includes('/node_modules/jiti/'));
    expect(outside).toEqual([pathToFileURL(CLI_PATH).href]);
  });

  it('the first log line requires pino as the bundle’s one file, none of the package’s own files', async () => {
    const cwd = mkdtempSync(path.join(dir, 'pino-'));
    writeFileSync(path.join(cwd, 'safe-run.config.json'), JSON.stringify({ scriptsDir: SCRIPTS_DIR() }));
    const trace = path.join(dir, 'trace-pino.txt');
    writeFileSync(trace, '');
    const result = await runCli(['list', '--verbose'], {
      cwd,
      fromModules: true,
      env: { SAFE_RUN_TRACE: trace, NODE_OPTIONS: `--import=${pathToFileURL(path.join(dir, 'register.mjs')).href}` },
    });
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toContain('config'); // the debug line that made the logger
    const required = readFileSync(trace, 'utf8')
      .split('\n')
      .filter((line) => line.startsWith('require:'));
    expect(required).toContain(`require:${path.join(BUNDLE, 'pino.cjs')}`);
    // pino's own requires (sonic-boom, thread-stream, its lib/ files) are inside that file.
    expect(required.filter((line) => /sonic-boom|thread-stream|\.\/lib\//.test(line))).toEqual([]);
  });

  it("a database command loads pg without Node's fetch: the bundle drops pg's Cloudflare probe", async () => {
    // undici is Node's own module, which the loader hooks never see: ask Node what it loaded.
    const hook = path.join(dir, 'internal-modules.cjs');
    const trace = path.join(dir, 'internal-modules.txt');
    writeFileSync(
      hook,
      `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(trace)}, process.moduleLoadList.join('\\n')));\n`,
    );
    const result = await runCli(['--db', 'postgres://x@127.0.0.1:1/x', 'blame', 'users', '--no-live'], {
      cwd: dir,
      env: { NODE_OPTIONS: `--require=${hook}` },
    });
    expect(result.stderr).toContain('Cannot connect');
    const internal = readFileSync(trace, 'utf8');
    expect(internal).toContain('NativeModule net');
    expect(internal).not.toContain('undici');
  });

  it('a command builds no Intl.Segmenter: yargs measures its ASCII help text without one', async () => {
    const hook = path.join(dir, 'segmenter.cjs');
    const trace = path.join(dir, 'segmenter.txt');
    writeFileSync(
      hook,
      `const fs = require('node:fs'); fs.writeFileSync(${JSON.stringify(trace)}, '');
const Original = Intl.Segmenter;
Intl.Segmenter = class extends Original { constructor(...a) { fs.appendFileSync(${JSON.stringify(trace)}, 'segmenter\\n'); super(...a); } };\n`,
    );
    const cwd = mkdtempSync(path.join(dir, 'run-'));
    writeFileSync(path.join(cwd, 'safe-run.config.json'), JSON.stringify({ scriptsDir: SCRIPTS_DIR() }));
    const env = { NODE_OPTIONS: `--require=${hook}`, DATABASE_URL: 'postgres://x@127.0.0.1:1/x' };
    const run = await runCli(['cleanup-invalid-sessions'], { cwd, env });
    expect(run.stderr).toContain('Cannot connect');
    // Any other command: yargs lays out its help once it starts, and finds it all ASCII.
    const snapshot = await runCli(['snapshot'], { cwd, env });
    expect(snapshot.stderr).toContain('Cannot connect');
    expect(readFileSync(trace, 'utf8')).toBe('');
    // The hook does see one when some text is not ASCII.
    execFileSync(process.execPath, ['-e', "console.log([...new Intl.Segmenter().segment('é')].length)"], {
      env: { ...process.env, ...env },
    });
    expect(readFileSync(trace, 'utf8')).toContain('segmenter');
  });

  it('--help lists every command from the registry without importing one', async () => {
    const { modules, stdout } = await loaded(['--help'], dir);
    for (const command of ['list', 'show <run>', 'check', 'completion']) expect(stdout).toContain(`safe-run ${command}`);
    for (const name of HEAVY) expect(modules).not.toContain(name);
    expect(modules).not.toMatch(COMMAND_MODULES);
  });

  it('list reads the config and the scripts, and loads no database driver or SQL parser for TypeScript scripts', async () => {
    // The script's child runs as "nobody" under root: it must be able to read the script.
    const cwd = mkdtempSync(path.join(dir, 'ts-only-'));
    mkdirSync(path.join(cwd, 'scripts'));
    for (const d of [dir, cwd, path.join(cwd, 'scripts')]) chmodSync(d, 0o755);
    writeFileSync(
      path.join(cwd, 'scripts', 'noop.ts'),
      "export default { name: 'noop', description: 'nothing', touches: {}, async run() {} };\n",
    );
    const { modules, stdout } = await loaded(['list'], cwd);
    expect(stdout).toContain('noop');
    expect(modules).toContain('/commands/list.');
    for (const name of ['/node_modules/kysely/', '/node_modules/pg/', 'libpg-query', '/commands/show.']) {
      expect(modules).not.toContain(name);
    }
  });

  it('list of unchanged SQL scripts takes their declarations from the cache, without the SQL parser', async () => {
    const cwd = mkdtempSync(path.join(dir, 'sql-only-'));
    mkdirSync(path.join(cwd, 'scripts'));
    writeFileSync(
      path.join(cwd, 'scripts', 'purge.sql'),
      '-- @description Purge\n-- @touches logs: delete\ndelete from logs where id < 10;\n',
    );
    // The first list reads the script for real: the statement policy needs PostgreSQL's grammar.
    expect((await loaded(['list'], cwd)).modules).toContain('libpg-query');
    const { modules, stdout } = await loaded(['list'], cwd);
    expect(stdout).toContain('touches public.logs: delete');
    expect(modules).not.toContain('libpg-query');
  });
});

describe('the command preloaded beside yargs', () => {
  const named = (argv: string[]): string | null | undefined => commandFor(argv)?.command;
  it.each([
    [['list'], 'list'],
    [['--config', 'x.json', '--json', 'show', 'last'], 'show <run>'],
    [['--db=postgres://h/d', 'check'], 'check'],
    [['cleanup-invalid-sessions', '--dry-run'], DEFAULT_COMMAND.command],
  ])('%j is %s', (argv, command) => expect(named(argv)).toBe(command));
  it.each([[['--help']], [['--json']], [['completion']], [[]]])('%j preloads nothing', (argv) => expect(named(argv)).toBeUndefined());
});

describe('did-you-mean and completion', () => {
  let cwd: string;
  beforeEach(() => {
    cwd = mkdtempSync(path.join(os.tmpdir(), 'safe-run-cli-'));
    writeFileSync(path.join(cwd, 'safe-run.config.json'), JSON.stringify({ scriptsDir: SCRIPTS_DIR() }));
  });
  afterEach(() => rmSync(cwd, { recursive: true, force: true }));

  it('suggests the command for a typo, before connecting to anything', async () => {
    const result = await runCli(['chek'], { cwd, env: { DATABASE_URL: 'postgres://x@127.0.0.1:1/x' } });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('Unknown command or script "chek". Did you mean: check?');
    expect(result.stderr).not.toContain('Cannot connect');
  });

  it('tells the operator what is safe: a run that cannot connect committed nothing; a read command changed nothing', async () => {
    const env = { DATABASE_URL: 'postgres://x@127.0.0.1:1/x' };
    const run = await runCli(['cleanup-invalid-sessions'], { cwd, env });
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toMatch(/Cannot connect[^\n]*\n {2}safe: nothing was committed[^\n]*\n {2}next: /);
    const blame = await runCli(['--db', env.DATABASE_URL, 'blame', 'users', '--no-live'], { cwd });
    expect(blame.stderr).toContain('safe: nothing was changed: `blame` only reads');
  });

  it('suggests the script for a typo, and only scripts after `run`', async () => {
    const typo = await runCli(['cleanup-invalid-sesions'], { cwd });
    expect(typo.stderr).toContain('Did you mean: cleanup-invalid-sessions?');
    const run = await runCli(['run', 'chek'], { cwd });
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain('Unknown script "chek".');
    expect(run.stderr).not.toContain('Did you mean: check');
  });

  it('prints a shell completion script that completes the commands', async () => {
    const script = await runCli(['completion'], { cwd });
    expect(script.exitCode).toBe(0);
    expect(script.stdout).toContain('complete -o bashdefault -o default -F _safe-run_yargs_completions safe-run');
    const words = await runCli(['--get-yargs-completions', 'safe-run', 'sh'], { cwd });
    expect(words.stdout.split('\n')).toEqual(expect.arrayContaining(['show', 'check']));
  });

  it.each([
    ['chek', ['check']],
    ['shwo', ['show']],
    ['verfiy', ['verify']],
    ['zzzzzz', []],
  ])('closest(%s)', (word, expected) => {
    expect(closest(word, commandNames())).toEqual(expected);
  });
});

describe('human log lines', () => {
  it('formats a pino entry as time, level, message and fields', () => {
    const time = new Date(2026, 0, 2, 12, 1, 3).getTime();
    const line = formatLogLine(JSON.stringify({ level: 30, time, msg: 'backup verified', tables: 3, bytes: 1_258_291, path: 'a b' }));
    expect(line).toBe('12:01:03 info  backup verified  tables=3 bytes=1.2MB path="a b"');
    expect(formatLogLine(JSON.stringify({ level: 40, time, msg: 'careful' }))).toBe('12:01:03 warn  careful');
  });
});

describe('progress on a terminal', () => {
  /** A stream that says it is a terminal, as the operator's stderr is, and keeps what was drawn. */
  function fakeTerminal(): { stream: NodeJS.WriteStream; text: () => string } {
    const chunks: string[] = [];
    const stream = Object.assign(new PassThrough(), { isTTY: true, columns: 100, rows: 40 });
    stream.on('data', (c: Buffer) => chunks.push(c.toString()));
    return { stream: stream as unknown as NodeJS.WriteStream, text: () => chunks.join('') };
  }

  it('writes log lines above a running bar, whole, and none is dropped when the bar stops', async () => {
    const term = fakeTerminal();
    const task = createProgress({ json: false, stream: term.stream }).start('script x', null);
    expect(writeAboveProgress('12:00:01 info  found 3 live sessions')).toBe(true);
    expect(writeAboveProgress('12:00:01 info  deleted 2 sessions')).toBe(true);
    task.stop();
    await new Promise((resolve) => setImmediate(resolve));
    expect(writeAboveProgress('after')).toBe(false); // no bar: the logger writes it itself
    const drawn = term.text();
    expect(drawn).toContain('12:00:01 info  found 3 live sessions\n12:00:01 info  deleted 2 sessions\n');
    // SingleBar's save/restore of the cursor would jump back over those lines at stop; none here.
    expect(drawn).not.toContain('\x1b8');
  });

  it('draws nothing on a pipe or with --json', () => {
    expect(createProgress({ json: true, stream: fakeTerminal().stream }).active).toBe(false);
    expect(writeAboveProgress('x')).toBe(false);
  });
});

describe('pg_dump --verbose progress', () => {
  it('reads the table being dumped and parallel workers finishing', () => {
    expect(parseDumpLine('pg_dump: dumping contents of table "public.users"')).toEqual({ kind: 'table-started', table: 'public.users' });
    expect(parseDumpLine('pg_dump: finished item 3379 TABLE DATA users')).toEqual({ kind: 'table-finished' });
    expect(parseDumpLine('pg_dump: reading indexes')).toBeNull();
  });

  it('counts a table done when the next starts, and survives lines split across chunks', () => {
    const updates: [number, string | undefined][] = [];
    const progress = { active: true, start: () => ({ update: (n: number, d?: string) => updates.push([n, d]), setTotal() {}, stop() {} }) };
    const dump = new DumpProgress(progress, 3);
    dump.stderr('pg_dump: reading indexes\npg_dump: dumping contents of table "public.a"\npg_dump: dumping con');
    expect(dump.tablesDone).toBe(0);
    dump.stderr('tents of table "public.b"\n');
    expect(dump.tablesDone).toBe(1);
    dump.written(2048);
    expect(updates.at(-1)).toEqual([1, 'public.b 2.0kB']);
  });

  it('keeps pg_dump errors and drops the verbose chatter from a failure message', () => {
    expect(dumpErrors('pg_dump: reading indexes\npg_dump: error: query failed: lock timeout\n')).toBe(
      'pg_dump: error: query failed: lock timeout',
    );
  });
});
