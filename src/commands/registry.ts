import type { CommandModule } from 'yargs';
import type { GlobalArgs } from './global-args.js';

/**
 * What a command file exports: its options (builder) and its handler. The command's name and
 * one-line description live in COMMANDS below, so that `safe-run --help` can list every
 * command without importing any of them.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each command narrows its own argv
export type CommandBody<A extends GlobalArgs = any> = Omit<CommandModule<GlobalArgs, A>, 'command' | 'describe' | 'aliases'>;

export interface LazyCommand {
  /** yargs' command string, positionals included: `show <run>`. */
  readonly command: string;
  readonly describe: string;
  readonly load: () => Promise<CommandBody>;
}

/**
 * Every command, imported only when it runs (or its own --help is asked for): start-up is
 * paid per command, not for all of them (`npm run bench` measures `cli_version_ms` and
 * `cli_list_ms`). Adding a command is one line here plus src/commands/<name>.ts exporting a
 * CommandBody; never a static import of a command from program.ts.
 */
export const COMMANDS: readonly LazyCommand[] = [
  {
    command: 'run <script>',
    describe: 'Guarded run of a script (same as `safe-run <script>`)',
    load: async () => (await import('./run.js')).runCommand,
  },
  {
    command: 'list',
    describe: 'List the scripts with their description and declared blast radius',
    load: async () => (await import('./list.js')).listCommand,
  },
  {
    command: 'verify',
    describe: 'Check every signature and the hash chain; name the first bad entry and why',
    load: async () => (await import('./verify.js')).verifyCommand,
  },
  {
    command: 'keygen',
    describe: 'Create the Ed25519 signing key pair (or rotate it with --rotate)',
    load: async () => (await import('./keygen.js')).keygenCommand,
  },
  {
    command: 'snapshot',
    describe: 'Record a signed snapshot: critical and exactTables counted, the rest estimated (for cron: narrows drift windows)',
    load: async () => (await import('./snapshot.js')).snapshotCommand,
  },
  {
    command: 'check',
    describe: 'Compare the live database with every signed observation; exit 10 while a finding is open (until `safe-run ack`)',
    load: async () => (await import('./check.js')).checkCommand,
  },
  { command: 'log', describe: 'Run history: one line per guarded run', load: async () => (await import('./log.js')).logCommand },
  {
    command: 'show <run>',
    describe: 'Everything recorded about one run: a run id, a unique prefix, or `last`',
    load: async () => (await import('./show.js')).showCommand,
  },
  {
    command: 'blame <table>',
    describe: "Timeline of a table's counts, each change attributed to a run or to the window outside runs",
    load: async () => (await import('./blame.js')).blameCommand,
  },
  {
    command: 'report <subject>',
    describe: 'Write the post-mortem of a table or a run (Markdown or HTML)',
    load: async () => (await import('./report.js')).reportCommand,
  },
  {
    command: 'doctor',
    describe: 'Check the database connection, pg_dump/pg_restore, the signing key and the evidence directory',
    load: async () => (await import('./doctor.js')).doctorCommand,
  },
  {
    command: 'restore <run>',
    describe: "Restore a run's backup: into a new scratch database, --into an empty one, --in-place into the live tables, or --pitr",
    load: async () => (await import('./restore.js')).restoreCommand,
  },
  {
    command: 'exec',
    describe: 'Wrap an external command (e.g. a db reset) with snapshots, a backup and signed audit entries',
    load: async () => (await import('./exec.js')).execCommand,
  },
  {
    command: 'undo <run>',
    describe: 'Put back what one committed run changed (deleted rows; with the ledger also updates and inserts)',
    load: async () => (await import('./undo.js')).undoCommand,
  },
  {
    command: 'recover',
    describe: 'Put back rows the change ledger kept (--ledger ID, or --table T --since D)',
    load: async () => (await import('./recover.js')).recoverCommand,
  },
  {
    command: 'backups',
    describe: 'List backups: run, script, time, size, verified or pruned, tables',
    load: async () => (await import('./backups.js')).backupsCommand,
  },
  {
    command: 'prune',
    describe: 'Delete old backups (never the audit log, never the newest of each script or critical table)',
    load: async () => (await import('./prune.js')).pruneCommand,
  },
  {
    command: 'protect [tables..]',
    describe: 'Record who writes to these tables (statement triggers, a ledger in schema safe_run); needs a superuser',
    load: async () => (await import('./protect.js')).protectCommand,
  },
  {
    command: 'ack <finding..>',
    describe: 'Acknowledge open check findings with a signed reason; check stays at exit 10 until then',
    load: async () => (await import('./ack.js')).ackCommand,
  },
  {
    command: 'evidence <action> [file]',
    describe: "Move this database's chain out of the shared evidence store (export) or an audit.jsonl into it (import)",
    load: async () => (await import('./evidence.js')).evidenceCommand,
  },
  {
    command: 'init',
    describe: 'Write safe-run.config.json here, create the evidence directory and signing key, then run doctor',
    load: async () => (await import('./init.js')).initCommand,
  },
];

/** The default command, `safe-run <script>`: the guarded run. */
export const DEFAULT_COMMAND: LazyCommand = {
  command: '$0 <script>',
  describe: 'Guarded run: snapshot, verified backup, guarded transaction, signed audit entries',
  load: async () => (await import('./run.js')).runCommand,
};

/** The first word of each command, for did-you-mean: `chek` -> `check`. */
export function commandNames(): string[] {
  return [...COMMANDS.map((c) => c.command.split(' ')[0]!), 'completion'];
}

/** Global options that take a value: the word after them is not the command. */
const VALUED_OPTIONS = new Set(['--db', '--config', '--log-format']);

/** The first word of `argv` that is neither an option nor a global option's value: what yargs will run. */
export function commandWord(argv: readonly string[]): string | undefined {
  return argv.find((word, i) => !word.startsWith('-') && !VALUED_OPTIONS.has(argv[i - 1] ?? ''));
}

/**
 * The command `argv` will run, so program.ts can start importing it while yargs itself loads. A
 * word that names no command is a script: the guarded run. null for no word (bare --help)
 * and for completion, which import nothing.
 */
export function commandFor(argv: readonly string[]): LazyCommand | null {
  const word = commandWord(argv);
  if (word === undefined || word === 'completion') return null;
  return COMMANDS.find((c) => c.command.split(' ')[0] === word) ?? DEFAULT_COMMAND;
}
