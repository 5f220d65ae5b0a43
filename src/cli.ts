#!/usr/bin/env node
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { globalOptions } from './commands/context.js';
import { reportError } from './commands/report-error.js';
import { listCommand } from './commands/list.js';
import { keygenCommand } from './commands/keygen.js';
import { verifyCommand } from './commands/verify.js';
import { defaultRunCommand, runCommand } from './commands/run.js';
import { snapshotCommand } from './commands/snapshot.js';
import { checkCommand } from './commands/check.js';
import { logCommand } from './commands/log.js';
import { showCommand } from './commands/show.js';
import { blameCommand } from './commands/blame.js';
import { reportCommand } from './commands/report.js';
import { doctorCommand } from './commands/doctor.js';
import { restoreCommand } from './commands/restore.js';
import { execCommand } from './commands/exec.js';
import { undoCommand } from './commands/undo.js';
import { recoverCommand } from './commands/recover.js';
import { backupsCommand } from './commands/backups.js';
import { pruneCommand } from './commands/prune.js';
import { usageError } from './errors.js';

/** Builds the yargs program and nothing else: each command lives in src/commands/. */
export function buildProgram(argv: string[]) {
  return globalOptions(yargs(argv))
    .scriptName('safe-run')
    .usage('Usage:\n  safe-run <script> [-- args]    guarded run\n  safe-run <command> [options]')
    .epilog(`Exit codes:\n${EXIT_CODES_HELP}\nRunbooks: docs/ in the safe-run repository.`)
    .command(defaultRunCommand)
    .command(runCommand)
    .command(listCommand)
    .command(verifyCommand)
    .command(keygenCommand)
    .command(snapshotCommand)
    .command(checkCommand)
    .command(logCommand)
    .command(showCommand)
    .command(blameCommand)
    .command(reportCommand)
    .command(doctorCommand)
    .command(restoreCommand)
    .command(execCommand)
    .command(undoCommand)
    .command(recoverCommand)
    .command(backupsCommand)
    .command(pruneCommand)
    .demandCommand(1, 'Name a script to run or a command; `safe-run list` shows the scripts.')
    .parserConfiguration({ 'populate--': true })
    .strict()
    .version(packageVersion())
    .help()
    .alias('h', 'help')
    .wrap(Math.min(100, process.stdout.columns ?? 100))
    .fail((message, error) => {
      if (error) throw error;
      // With the guarded run as the default command, "no command" surfaces as a missing positional.
      const text =
        !message || /Not enough non-option arguments/.test(message)
          ? 'Name a script to run or a command; `safe-run list` shows the scripts.'
          : message;
      throw usageError(text, 'See `safe-run --help`.');
    });
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

/** Walk up from the compiled file: dist/src/cli.js in the package, other depths in other build trees. */
function packageVersion(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, 'package.json');
    if (existsSync(candidate)) {
      const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'safe-run' && pkg.version) return pkg.version;
    }
    const parent = path.dirname(dir);
    if (parent === dir) return 'unknown';
    dir = parent;
  }
}

const argv = hideBin(process.argv);
try {
  await buildProgram(argv).parseAsync();
} catch (error) {
  process.exitCode = reportError(error, { json: argv.includes('--json'), verbose: argv.includes('--verbose') });
}
