import type { CommandBody } from './registry.js';
import type { Config } from '../config/config.js';
import { formatDelta } from '../snapshot/counters.js';
import { execWrapped } from '../exec/exec.js';
import { formatArgv } from '../exec/redact.js';
import type { ExecOptions, ExecResult } from '../exec/types.js';
import { withTarget } from '../db/target.js';
import type { Logger } from '../logger.js';
import { backupLine } from '../run/summary.js';
import { emit, loadContext, type GlobalArgs } from './context.js';

export type { ExecOptions, ExecResult };

/** `safe-run exec -- <command...>`. The process exit code is in result.exitCode. */
export async function exec(config: Config, options: ExecOptions, log: Logger): Promise<ExecResult> {
  return withTarget(config.databaseUrl, (target) => execWrapped(config, options, target, log));
}

export function renderExec(r: ExecResult): string {
  const ran = r.commandExitCode === null ? 'not run' : r.signal ? `killed by ${r.signal}` : `exited ${r.commandExitCode}`;
  const lines = [
    `exec ${r.runId}${r.label ? ` [${r.label}]` : ''}  ${formatArgv(r.command)}  ${ran}${r.commandExitCode === null ? '' : ` after ${(r.durationMs / 1000).toFixed(1)}s`}`,
  ];
  const changed = Object.entries(r.changes);
  if (changed.length) {
    const width = Math.max(5, ...changed.map(([t]) => t.length));
    lines.push(`  ${'table'.padEnd(width)}  rows before -> after   counters`);
    for (const [table, c] of changed) {
      const rows = `${c.before ?? '(none)'} -> ${c.after ?? '(dropped)'}${c.rowsKind === 'estimate' ? ' (estimate)' : ''}`;
      const flags = [c.recreated ? 'RECREATED' : '', c.rewritten ? 'TRUNCATE/REWRITE' : ''].filter(Boolean).join(' ');
      lines.push(`  ${table.padEnd(width)}  ${rows.padEnd(20)}  ${formatDelta(c.counters)}${flags ? `  ${flags}` : ''}`);
    }
  } else if (r.commandExitCode !== null) {
    lines.push('  no table changed');
  }
  for (const f of r.findings) if (f.kind !== 'count-changed') lines.push(`  ! ${f.kind}: ${f.detail}`);
  if (r.error) lines.push(`  error: ${r.error}`);
  lines.push(backupLine(r.backup));
  lines.push(nextStep(r));
  return lines.join('\n');
}

function nextStep(r: ExecResult): string {
  const critical = r.findings.filter((f) => f.kind === 'critical-empty' || f.kind === 'critical-drop');
  if (r.status === 'backup-failed') return '  next: fix the backup problem above (`safe-run doctor`); the command was NOT run.';
  if (critical.length) {
    const table = critical[0]!.table ?? 'users';
    const restore = r.backup.status === 'verified' ? `; the rows are in the backup: safe-run restore ${r.runId} --table ${table}` : '';
    return `  exit 10: a critical table was emptied or dropped beyond its limit. exec has no transaction: this was recorded, not prevented${restore}`;
  }
  return `  next: safe-run log (it lists this exec with its counts); safe-run check compares later changes against its post-snapshot`;
}

interface ExecArgs extends GlobalArgs {
  readonly label?: string;
  readonly reason?: string;
  readonly backup?: 'full' | 'none';
  readonly yes?: boolean;
  readonly '--'?: string[];
}

const EPILOG = `Order: take the run lock, pre-snapshot + full backup, signed exec.intent, run the command (your terminal, no shell, your environment), post-snapshot, signed exec.outcome with per-table row and counter changes.
No transaction: nothing is rolled back or prevented; what changed is recorded. safe-run keeps one connection to the database open while the command runs (for the lock), so a command that drops the database needs DROP DATABASE ... WITH (FORCE).
Exit codes: the command's own code (0 when it succeeded), except 10 when a critical table ("criticalTables") was emptied or dropped beyond its limit (even if the command failed), 4 when the backup failed (the command did NOT run), 6 when a guarded run holds the lock, 2 for a command that is not found, 130 when interrupted.
Passwords in URLs and password=/…PASSWORD= arguments are recorded as ***.`;

export const execCommand: CommandBody<ExecArgs> = {
  builder: (yargs) =>
    yargs
      .usage(
        "safe-run exec [--label L] [--reason R] [--backup full|none] -- <command...>\n\nWrap an external command with snapshots, a backup and signed audit entries. safe-run's own options go before --.",
      )
      .option('label', { type: 'string', describe: 'A name for this exec in the log (e.g. "nightly reset")' })
      .option('reason', { type: 'string', describe: 'Why (ticket, incident); recorded in the audit log' })
      .option('backup', {
        choices: ['full', 'none'] as const,
        describe: 'Backup before the command (default: full, or none if the config says backup.scope none)',
      })
      .option('yes', { type: 'boolean', describe: 'Confirm environments that require confirmation' })
      .example('$0 exec --label reset -- npm run db:reset', 'Record what a reset does to every table')
      .example('$0 exec --reason INC-42 -- psql -c "delete from sessions where ..."', 'A manual fix, with evidence')
      .epilog(EPILOG),
  handler: async (argv) => {
    const ctx = await loadContext(argv);
    const result = await exec(
      ctx.config,
      {
        command: (argv['--'] ?? []).map(String),
        label: argv.label ?? null,
        reason: argv.reason ?? null,
        backupScope: argv.backup,
        yes: argv.yes,
        json: ctx.json,
      },
      ctx.log,
    );
    emit(ctx, result, renderExec, result.exitCode);
  },
};
