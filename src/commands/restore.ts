import type { CommandBody } from './registry.js';
import type { Config } from '../config/config.js';
import { withTarget } from '../db/target.js';
import type { Logger } from '../logger.js';
import { restoreInPlace, type InPlaceOptions, type InPlaceResult } from '../restore/in-place.js';
import { restoreRun } from '../restore/restore.js';
import { renderReinsert } from '../reinsert/summary.js';
import type { RestoreOptions, RestoreResult } from '../restore/types.js';
import { resolveRunRef } from '../history/latest-run.js';
import { emit, loadContext, type GlobalArgs } from './context.js';
import { COMMITTED_RUN_POSITIONAL } from './global-args.js';
import { ExitCode, usageError } from '../errors.js';
import { renderPitrRestore, restoreAtRun } from './restore-pitr.js';

export type { InPlaceOptions, InPlaceResult, RestoreOptions, RestoreResult };

/** `safe-run restore <run>`: data from that run's verified backup, by default into a new scratch database. */
export async function restore(config: Config, options: RestoreOptions, log: Logger): Promise<RestoreResult> {
  return withTarget(config.databaseUrl, (target) => restoreRun(config, options, target, log));
}

/** `safe-run restore <run> --in-place`: the backup's rows back into the live tables, as a guarded run of its own. */
export async function restoreInPlaceCommand(config: Config, options: InPlaceOptions, log: Logger): Promise<InPlaceResult> {
  // Two handles on the same database: one to plan with, one the guarded run opens as its own.
  return withTarget(config.databaseUrl, (target) =>
    withTarget(config.databaseUrl, (runTarget) => restoreInPlace(config, options, target, runTarget, log)),
  );
}

export function renderInPlace(r: InPlaceResult): string {
  const lines = [
    `Rows from the backup of run ${r.from.runId} (${r.from.source}, ${r.from.ts}), ${r.archive.path}  sha256 ${r.archive.sha256.slice(0, 16)}… matches the signed intent`,
    renderReinsert(r),
  ];
  for (const t of r.notInBackup)
    lines.push(`  note: ${t} is reached by the cascade but is not in this backup; its rows cannot come back from it.`);
  for (const n of r.ledgerNewer) {
    lines.push(
      `  note: the ledger kept ${n.rowsKept} rows of ${n.table} after this backup (${n.statements} statements, the last at ${n.lastAt}); they are newer:`,
      `    safe-run recover --table ${n.table} --since ${r.from.ts}`,
    );
  }
  return lines.join('\n');
}

export function renderRestore(r: RestoreResult): string {
  const lines = [
    `Restored run ${r.runId} (${r.source}) from ${r.archive.path}  sha256 ${r.archive.sha256.slice(0, 16)}… matches the signed intent`,
    r.mode === 'scratch' ? `  into the new database ${r.target}` : `  into the existing tables of ${r.target} (data only)`,
  ];
  const width = Math.max(5, ...r.tables.map((t) => t.length));
  lines.push(`  ${'table'.padEnd(width)}  restored  before the run`);
  for (const table of r.tables) {
    const c = r.counts[table]!;
    const pre = c.pre === null ? '?' : `${c.pre}${c.preKind === 'estimate' ? ' (estimate)' : ''}`;
    const flag = c.pre !== null && c.preKind === 'exact' && c.pre !== c.restored ? '  <- differs' : '';
    lines.push(`  ${table.padEnd(width)}  ${String(c.restored).padStart(8)}  ${pre.padStart(14)}${flag}`);
  }
  lines.push(`  recorded as audit entry #${r.entry.seq}`);
  lines.push(...nextStep(r));
  return lines.join('\n');
}

function nextStep(r: RestoreResult): string[] {
  return r.next.map((line) => `  next: ${line}`);
}

interface RestoreArgs extends GlobalArgs {
  readonly run: string;
  readonly table?: string[];
  readonly into?: string;
  readonly pitr?: boolean;
  readonly 'data-dir'?: string;
  readonly port?: number;
  readonly 'in-place'?: boolean;
  readonly 'with-dependents'?: boolean;
  readonly 'dry-run'?: boolean;
  readonly reason?: string;
  readonly yes?: boolean;
}

const EPILOG = `The archive's sha256 is checked against the run's signed intent before anything is restored (mismatch: exit 5, nothing restored).
Default: a NEW database <db>_restore_<first 10 chars of the run id> on the same server (it must not exist yet): every backed-up table's definition, the rows of all of them (or only of the --table ones), schemas/types/functions the archive lacks copied from the live database; no owners, no grants, no foreign keys.
--into URL: loads the rows (data only) into tables that already exist there and are EMPTY; it never merges with or overwrites rows. One transaction: all or nothing.
--in-place --table T [--with-dependents]: puts the backup's rows of T (and of every table its deletes cascade to) back into the LIVE tables, parents first, as a guarded run of its own (snapshot, backup, signed entries; declared: those tables, insert). A row whose primary key exists now is left as it is and counted as skipped; a table without a primary key is refused unless it is empty. Needs no CREATEDB.
The default scratch restore needs a role with CREATEDB (\`safe-run doctor\` checks it).
A signed "restore" entry records the target and the counts. Exit codes: 0 restored, 2 unknown run or table / scratch exists / target not empty, 4 the run has no backup or pg_restore failed, 5 archive does not match its signed hash.
--pitr (backup.mode "pgbackrest"): pgbackrest restore --set=<recorded set> --type=lsn --target=<pre-run WAL position> --target-exclusive --target-action=promote --archive-mode=off into --data-dir (new or empty; never the live one), started on --port as the postgres OS user when run as root, counted beside the run's pre-snapshot. It is left running for you. Exit 4: pgBackRest or recovery failed, or an exactly counted table differs.`;

export const restoreCommand: CommandBody<RestoreArgs> = {
  builder: (yargs) =>
    yargs
      .positional('run', COMMITTED_RUN_POSITIONAL)
      .option('table', { type: 'string', array: true, describe: 'Only this table (repeatable): `users` or `schema.table`' })
      .option('into', { type: 'string', describe: 'Existing database URL to fill; its tables must exist and be empty' })
      .option('pitr', { type: 'boolean', describe: 'pgbackrest mode: the whole cluster as it was just before the run, into --data-dir' })
      .option('data-dir', { type: 'string', describe: 'With --pitr: a NEW (or empty) directory for the restored cluster' })
      .option('port', { type: 'number', describe: 'With --pitr: port for the restored cluster (default: any free port)' })
      .option('in-place', {
        type: 'boolean',
        describe: 'Put the rows back into the live tables (needs --table); rows whose key exists are skipped',
      })
      .option('with-dependents', { type: 'boolean', describe: 'With --in-place: also the tables the cascade reaches, parents first' })
      .option('dry-run', { type: 'boolean', describe: 'With --in-place: do everything, then roll back' })
      .option('reason', { type: 'string', describe: 'With --in-place: why, recorded in the audit log' })
      .option('yes', { type: 'boolean', describe: 'Confirm environments that require confirmation' })
      .conflicts('in-place', 'into')
      .conflicts('pitr', ['in-place', 'into'])
      .check((argv) => {
        if (argv['in-place'] && !argv.table?.length)
          throw usageError(
            '--in-place needs --table T: name the tables to put back.',
            'e.g. safe-run restore <run> --in-place --table users --with-dependents',
          );
        if (argv['with-dependents'] && !argv['in-place']) throw usageError('--with-dependents goes with --in-place.');
        return true;
      })
      .example('$0 restore 01JD4Q', 'Everything the run backed up, into <db>_restore_01jd4q…')
      .example('$0 restore 01JD4Q --table users', 'Only users, into a scratch database')
      .example('$0 restore 01JD4Q --in-place --table users --with-dependents', 'Put wiped users (and their cascaded children) back')
      .example('$0 restore 01JD4Q --table users --into "$DATABASE_URL"', 'Refill the empty users table')
      .example('$0 restore 01JD4Q --pitr --data-dir /var/tmp/pitr-01JD4Q --port 5499', 'pgbackrest mode: cluster as of just before the run')
      .epilog(EPILOG),
  handler: async (argv) => {
    const ctx = await loadContext(argv);
    const run = await resolveRunRef(ctx.config, argv.run, ctx.log, { kind: 'committed' });
    if (argv.pitr) {
      if (!argv['data-dir'])
        throw usageError('--pitr needs --data-dir DIR.', 'Pass a new directory for the restored cluster: --data-dir /var/tmp/pitr-<run>.');
      const pitr = await restoreAtRun(ctx.config, { run, dataDir: argv['data-dir'], port: argv.port ?? null }, ctx.log);
      // An exactly counted table that differs: the restore does not prove the state before the run.
      emit(ctx, pitr, renderPitrRestore, pitr.mismatched.length ? ExitCode.backupFailed : ExitCode.ok);
      return;
    }
    if (argv['in-place']) {
      const options = {
        run,
        tables: argv.table ?? [],
        withDependents: argv['with-dependents'] === true,
        dryRun: argv['dry-run'] === true,
        reason: argv.reason ?? null,
        yes: argv.yes,
      };
      const inPlace = await restoreInPlaceCommand(ctx.config, options, ctx.log);
      emit(ctx, inPlace, renderInPlace, inPlace.run.exitCode);
      return;
    }
    const result = await restore(ctx.config, { run, tables: argv.table ?? [], into: argv.into ?? null }, ctx.log);
    emit(ctx, result, renderRestore);
  },
};
