import type { Config } from '../config/config.js';
import { ExitCode } from '../errors.js';
import { counterDelta, isZeroDelta } from '../snapshot/counters.js';
import { diffSnapshots } from '../snapshot/diff.js';
import type { DriftFinding, ExecStatus, ExecTableChange, Snapshot, TableKey } from '../records/index.js';

/**
 * What the wrapped command did, read from the outside: there is no transaction to measure
 * from within, so this is the difference between two snapshots, and nothing was prevented.
 */
export function tableChanges(pre: Snapshot, post: Snapshot): Record<TableKey, ExecTableChange> {
  const changes: Record<TableKey, ExecTableChange> = {};
  const keys = [...new Set([...Object.keys(pre.tables), ...Object.keys(post.tables)])].sort();
  for (const key of keys) {
    const a = pre.tables[key] ?? null;
    const b = post.tables[key] ?? null;
    const counters = a && b ? counterDelta(pre.database, a, post.database, b) : null;
    const change: ExecTableChange = {
      before: a?.rows ?? null,
      after: b?.rows ?? null,
      rowsKind: a?.rowsKind === 'estimate' || b?.rowsKind === 'estimate' ? 'estimate' : 'exact',
      counters,
      recreated: !!a && !!b && a.oid !== b.oid,
      rewritten: !!a && !!b && a.oid === b.oid && a.relfilenode !== b.relfilenode,
    };
    const moved = change.before !== change.after || change.recreated || change.rewritten || (counters !== null && !isZeroDelta(counters));
    if (moved) changes[key] = change;
  }
  return changes;
}

/** The same findings `check` would report for this window, so both speak one language. */
export function execFindings(pre: Snapshot, post: Snapshot, config: Pick<Config, 'criticalTables'>): DriftFinding[] {
  return diffSnapshots(pre, post, config);
}

export const violatesCritical = (findings: readonly DriftFinding[]): boolean =>
  findings.some((f) => f.kind === 'critical-empty' || f.kind === 'critical-drop');

/**
 * safe-run's exit code. A critical table emptied or dropped beyond its limit (10) outranks
 * the command's own failure: the lost data is the news. Otherwise the command's code,
 * unchanged, so `safe-run exec -- cmd` can stand in for `cmd` in scripts and CI.
 */
export function execExitCode(status: ExecStatus, commandExitCode: number | null, findings: readonly DriftFinding[]): number {
  if (status === 'backup-failed') return ExitCode.backupFailed;
  if (violatesCritical(findings)) return ExitCode.drift;
  if (status === 'interrupted') return ExitCode.interrupted;
  return commandExitCode ?? 0;
}
