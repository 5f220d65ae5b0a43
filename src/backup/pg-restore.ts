import { execa } from 'execa';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ExitCode, SafeRunError } from '../errors.js';
import type { Logger } from '../logger.js';
import { listArchive, type TocEntry } from './archive.js';
import { dbnameConninfo, pgChildEnv } from './child-env.js';

/** The one way safe-run runs pg_restore against a database (`restore` into a scratch database, and `restore --into`). */
export interface PgRestoreJob {
  readonly bin: string;
  readonly archive: string;
  /** The database to fill. Its credentials reach pg_restore through PG* variables only. */
  readonly target: URL;
  /** The TOC entries to restore, in the order pg_restore should restore them (its --use-list); all of them when absent. */
  readonly items?: readonly TocEntry[];
  /** Rows only, into tables that already exist. */
  readonly dataOnly?: boolean;
  /** Drop the archive's objects first. */
  readonly clean?: boolean;
  /** The next step printed when pg_restore fails; the caller knows what usually goes wrong. */
  readonly hint?: string;
  readonly log?: Logger;
}

const DEFAULT_HINT = 'Nothing was committed to the target database (the restore runs in one transaction).';

/**
 * All or nothing (--single-transaction, --exit-on-error): a failed restore leaves the target as
 * it was. Owners and grants are the target's business (--no-owner, --no-privileges).
 */
export async function runPgRestore(job: PgRestoreJob): Promise<void> {
  const items = job.items ? job.items.filter((e) => !isLedgerTrigger(e)) : await withoutLedgerTriggers(job);
  await execPgRestore({
    bin: job.bin,
    items,
    args: pgRestoreArgs(job),
    env: pgChildEnv(job.target, 'safe-run restore'),
    log: job.log,
    failure: (how, stderr) =>
      // Exit 4 is the contract's "the backup could not be used", the closest fit for a failed restore.
      new SafeRunError(
        `Restore failed: pg_restore ${how}; nothing was restored${stderr ? `:\n${stderr}` : '.'}`,
        ExitCode.backupFailed,
        job.hint ?? DEFAULT_HINT,
      ),
  });
}

export interface PgRestoreExec {
  readonly bin: string;
  /** Written to a private --use-list file; every entry of the archive when null. */
  readonly items: readonly TocEntry[] | null;
  /** Everything but --use-list; the archive last. */
  readonly args: readonly string[];
  readonly env: Record<string, string>;
  /** The error for a pg_restore that failed: how it ended ("exited 1") and its stderr. */
  readonly failure: (how: string, stderr: string) => SafeRunError;
  readonly log?: Logger | undefined;
}

/**
 * The one place pg_restore is spawned: the use-list goes in a private temp directory that is
 * removed afterwards, no variable of the operator's environment leaks in (extendEnv: false),
 * and a failure becomes the caller's readable error. Returns pg_restore's stdout, which is
 * the archive's SQL when the args say `--file=-`.
 */
export async function execPgRestore(run: PgRestoreExec): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'safe-run-restore-'));
  try {
    const listFile = run.items ? path.join(dir, 'restore.list') : null;
    if (listFile && run.items) await writeFile(listFile, useListText(run.items), { mode: 0o600 });
    const archive = run.args.at(-1) ?? '';
    const args = [...run.args.slice(0, -1), ...(listFile ? [`--use-list=${listFile}`] : []), archive];
    run.log?.debug('pg_restore', { bin: run.bin, args });
    const result = await execa(run.bin, args, {
      env: run.env,
      extendEnv: false,
      stdin: 'ignore',
      reject: false,
      maxBuffer: 1024 * 1024 * 1024,
    });
    if (result.exitCode === 0) return String(result.stdout);
    const how = result.signal ? `was killed by ${result.signal}` : `exited ${result.exitCode}`;
    throw run.failure(how, String(result.stderr).trim());
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function pgRestoreArgs(job: PgRestoreJob): string[] {
  const args = ['--no-owner', '--no-privileges', '--exit-on-error', '--single-transaction', '--no-password'];
  if (job.dataOnly) args.push('--data-only');
  if (job.clean) args.push('--clean', '--if-exists');
  // pg_restore only connects when given --dbname; the name alone is no secret.
  args.push(`--dbname=${dbnameConninfo(job.target)}`);
  args.push(job.archive);
  return args;
}

/**
 * A protected table's dump carries its change-ledger triggers, whose functions live in the
 * safe_run schema that is never dumped: restored as they are, they fail the restore. They
 * are left out (the target has its own protection, or none). Null: nothing to leave out.
 */
async function withoutLedgerTriggers(job: PgRestoreJob): Promise<TocEntry[] | null> {
  const toc = await listArchive(job.bin, job.archive, pgChildEnv(job.target, 'safe-run restore'));
  const kept = toc.filter((e) => !isLedgerTrigger(e));
  return kept.length === toc.length ? null : kept;
}

function isLedgerTrigger(e: TocEntry): boolean {
  return (e.type === 'TRIGGER' || e.type === 'EVENT TRIGGER') && /(^| )safe_run_ledger_[a-z_]+ /.test(e.rest);
}

/** pg_restore restores a --use-list in the order it is written. */
function useListText(items: readonly TocEntry[]): string {
  return `${items.map((item) => item.line).join('\n')}\n`;
}
