import v8 from 'node:v8';
import type { Argv, CommandModule } from 'yargs';
import { globalOptions, type GlobalArgs } from './commands/global-args.js';
import { COMMANDS, DEFAULT_COMMAND, commandFor, commandNames, commandWord, type LazyCommand } from './commands/registry.js';
import { reportError } from './commands/report-error.js';
import { usageError } from './errors.js';
import { packageVersion } from './version.js';

/**
 * Builds the yargs program and nothing else: each command lives in src/commands/ and is
 * imported only when it runs (registry.ts), so `--help` loads yargs and this file only.
 */
export async function buildProgram(argv: string[]) {
  const { default: yargs } = await import('yargs');
  let program = globalOptions(yargs(argv))
    .scriptName('safe-run')
    // yargs' own words (Commands:, Options:) in English like the rest of safe-run's output; the
    // bundle does not carry yargs' translations, so LANG would otherwise pick a file that is not there.
    .locale('en')
    .usage('Usage:\n  safe-run <script> [-- args]    guarded run\n  safe-run <command> [options]')
    .epilog(`Exit codes:\n${EXIT_CODES_HELP}\nRunbooks: docs/ in the safe-run repository.`)
    .command(lazy(DEFAULT_COMMAND, { skipForBareHelp: argv }));
  for (const entry of COMMANDS) program = program.command(lazy(entry));
  return program
    .completion('completion', 'Print a bash/zsh completion script: safe-run completion >> ~/.bashrc')
    .demandCommand(1, NO_COMMAND)
    .parserConfiguration({ 'populate--': true })
    .strict()
    .version(packageVersion())
    .help()
    .alias('h', 'help')
    .wrap(Math.min(100, process.stdout.columns ?? 100))
    .fail((message, error) => {
      if (error) throw error;
      if (message && /Not enough non-option arguments/.test(message)) throw missingArgument(argv);
      throw usageError(message || NO_COMMAND, 'See `safe-run --help`.');
    });
}

const NO_COMMAND = 'Name a script to run or a command; `safe-run list` shows the scripts.';

/**
 * yargs says "Not enough non-option arguments" for a command without its positional
 * (`safe-run blame`), and, with the guarded run as the default command, for no command at all.
 */
function missingArgument(argv: readonly string[]): Error {
  const entry = commandFor(argv);
  if (!entry || entry === DEFAULT_COMMAND) return usageError(NO_COMMAND, 'See `safe-run --help`.');
  const [word, ...positionals] = entry.command.split(' ');
  return usageError(`Missing ${positionals.join(' ')}. Usage: safe-run ${entry.command}`, `See \`safe-run ${word} --help\`.`);
}

/**
 * A command whose module is imported when yargs picks it: its builder (options, for parsing
 * and for its own --help) and its handler come from the module; name and description from
 * the registry, so the top-level help needs neither.
 */
function lazy(entry: LazyCommand, options: { skipForBareHelp?: readonly string[] } = {}): CommandModule<GlobalArgs, GlobalArgs> {
  return {
    command: entry.command,
    describe: entry.describe,
    builder: (async (y: Argv<GlobalArgs>, helpOrVersion: boolean) => {
      // yargs builds the default command for a bare `safe-run --help` or `--version` too; the
      // guarded run's options are not shown there, so its module need not load for them.
      const bare = options.skipForBareHelp?.every((arg) => arg.startsWith('-'));
      if (helpOrVersion && bare) return y;
      const { builder } = await entry.load();
      if (typeof builder === 'function') return (await builder(y)) as Argv<GlobalArgs>;
      return builder ? y.options(builder) : y;
      // The cast: @types/yargs knows neither the async builder nor its second argument; yargs 18 has both.
    }) as unknown as (y: Argv<GlobalArgs>) => Argv<GlobalArgs>,
    handler: async (args) => {
      await (await entry.load()).handler(args);
    },
  };
}

const EXIT_CODES_HELP = [
  ['0 ok, or a dry run', '1 script failed, rolled back', '2 usage or configuration error'],
  ['3 guard violated, rolled back', '4 backup failed, script not run', '5 audit log unwritable or bad'],
  ['6 another run holds the lock', '10 check found drift', '70 internal error (a bug in safe-run)'],
  ['130 interrupted, rolled back'],
]
  .map((row) =>
    row
      .map((cell) => cell.padEnd(33))
      .join('')
      .trimEnd(),
  )
  .join('\n');

/** The command the words name: a registered command, "run" for a script name, undefined for none. */
function commandOf(words: readonly string[]): string | undefined {
  const word = commandWord(words);
  if (word === undefined) return undefined;
  return commandNames().includes(word) ? word : 'run';
}

/**
 * Runs one command line: the bundle's door (dist/src/cli.js) and the start-up snapshot
 * (support/build/snapshot.ts) both come here.
 */
export async function main(argv: string[]): Promise<void> {
  // libpg-query's 2 MB of WASM (the statement policy's parser) is compiled by Liftoff at once and
  // then again by TurboFan on background threads: ~500 ms of CPU that a run's few parses never
  // repay, and that starves the libuv pool (a first fs call waited 150-800 ms behind it on
  // 2 cores). Liftoff's code parses the same; this process owns its V8, so the flag is ours to set.
  v8.setFlagsFromString('--liftoff-only');
  try {
    // A bare `--version` (scripts, support tickets, `npx safe-run --version`) is answered
    // before yargs loads: importing yargs is most of what the rest of --version would cost.
    if (argv.length === 1 && argv[0] === '--version') process.stdout.write(`${packageVersion()}\n`);
    else {
      // The command's modules (the database driver, the query builder, the records' schemas)
      // load beside yargs', not after them; yargs' own import of the command then finds them
      // loaded. A failure surfaces there, through the one error handler.
      commandFor(argv)
        ?.load()
        .catch(() => {});
      await (await buildProgram(argv)).parseAsync();
    }
  } catch (error) {
    process.exitCode = reportError(error, { json: argv.includes('--json'), verbose: argv.includes('--verbose'), command: commandOf(argv) });
  }
}
