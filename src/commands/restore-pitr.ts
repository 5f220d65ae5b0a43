import type { Config } from '../config/config.js';
import { withTarget } from '../db/target.js';
import type { Logger } from '../logger.js';
import { restorePitr, type PitrRestoreOptions, type PitrRestoreResult } from '../restore/pitr.js';

export type { PitrRestoreOptions, PitrRestoreResult };

/** `safe-run restore <run> --pitr`: the whole cluster as it was just before the run, in a new data directory. */
export async function restoreAtRun(config: Config, options: PitrRestoreOptions, log: Logger): Promise<PitrRestoreResult> {
  return withTarget(config.databaseUrl, (target) => restorePitr(config, options, target, log));
}

export function renderPitrRestore(r: PitrRestoreResult): string {
  const lines = [
    `Restored run ${r.runId} (${r.source}) to just before it: pgBackRest set ${r.backupLabel}, WAL position ${r.targetLsn}`,
    `  new cluster: ${r.dataDir}, port ${r.port}, database ${r.database} (the live cluster was not touched)`,
  ];
  const keys = Object.keys(r.counts);
  const width = Math.max(5, ...keys.map((t) => t.length));
  lines.push(`  ${'table'.padEnd(width)}  restored  before the run`);
  for (const key of keys) {
    const c = r.counts[key]!;
    const pre = `${c.pre ?? '?'}${c.preKind === 'estimate' ? ' (estimate)' : ''}`;
    const flag = r.mismatched.includes(key)
      ? '  <- DIFFERS'
      : c.concurrentWriters
        ? `  (another session wrote to it during the run${c.restored !== c.pre ? '; that explains the difference' : ''})`
        : '';
    lines.push(`  ${key.padEnd(width)}  ${String(c.restored).padStart(8)}  ${pre.padStart(14)}${flag}`);
  }
  lines.push(
    r.mismatched.length
      ? `  ${r.mismatched.length} exactly counted table(s) differ from the pre-snapshot: this restore does not reproduce the state before the run.`
      : '  every exactly counted table matches the pre-snapshot.',
  );
  lines.push(`  recorded as audit entry #${r.entry.seq}`);
  const asOwner = r.runAs ? `sudo -u ${r.runAs} ` : '';
  lines.push(
    `  next: look at the data:  psql "${r.url}"`,
    `        copy rows back with \\copy, as after any restore; then stop the copy:`,
    `        ${asOwner}${r.pgCtl} -D ${r.dataDir} stop && rm -rf ${r.dataDir}`,
  );
  return lines.join('\n');
}
