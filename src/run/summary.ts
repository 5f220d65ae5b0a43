import { type RunResult } from './types.js';
import { violationSubject, type BackupRecord, type PitrIntentRecord } from '../records/index.js';

/**
 * The human summary of a run: what changed, the guards' verdict, the backup, the timings.
 * `next` replaces the status's own next step: a built-in run (recover, undo, restore) knows
 * better than "fix the script".
 */
export function renderRunSummary(r: RunResult, next?: string): string {
  const lines = [`${r.script}  run ${r.runId}  ${headline(r)}`];
  lines.push(...changeTable(r));
  lines.push(guardLine(r));
  if (r.trust) lines.push(trustLine(r.trust));
  for (const v of r.violations) lines.push(`    x ${violationSubject(v)}: ${v.rule}: ${v.detail}`);
  if (r.error)
    lines.push(
      `  error: ${r.error.message}${r.error.code ? ` (${r.error.code})` : ''}`,
      ...(r.error.detail ? [`    detail: ${r.error.detail}`] : []),
      ...(r.error.hint ? [`    hint: ${r.error.hint}`] : []),
    );
  if (r.sequencesUsed.length && r.status !== 'committed')
    lines.push(`  note: sequences advanced and stay advanced after a rollback: ${r.sequencesUsed.join(', ')}`);
  lines.push(
    r.status === 'interrupted' && r.backup.status === 'failed'
      ? '  backup: stopped by the interrupt; the partial archive was removed'
      : backupLine(r.backup, r.status === 'dry-run'),
  );
  lines.push(...driftLines(r.drift));
  if (r.scriptOutput !== undefined) lines.push(`  script returned: ${JSON.stringify(r.scriptOutput)}`);
  lines.push(
    `  timings: ${Object.entries(r.timingsMs)
      .filter(([k]) => !k.startsWith('tx.'))
      .map(([k, v]) => `${k} ${v}ms`)
      .join(', ')}`,
  );
  lines.push(next ?? nextStep(r));
  return lines.filter(Boolean).join('\n');
}

function headline(r: RunResult): string {
  const words: Record<RunResult['status'], string> = {
    committed: 'COMMITTED',
    'dry-run': 'DRY RUN (rolled back)',
    committing: 'COMMITTING',
    failed: 'FAILED (rolled back)',
    'rolled-back': 'ROLLED BACK',
    'commit-failed': 'COMMIT FAILED',
    'guard-violation': 'GUARD VIOLATION (rolled back)',
    'backup-failed': 'BACKUP FAILED (script not run)',
    interrupted: 'INTERRUPTED (rolled back)',
    escaped: 'ESCAPED THE GUARD (the script committed by itself)',
  };
  return words[r.status];
}

/** Statuses whose changes stayed in the database. */
const KEPT = new Set<RunResult['status']>(['committed', 'committing', 'escaped']);

function changeTable(r: RunResult): string[] {
  const entries = Object.entries(r.changes);
  if (!entries.length && r.rowsAffected && !KEPT.has(r.status)) {
    // The transaction failed before it could be measured: say what the script had done, not "nothing".
    return [`  rows changed before the rollback: ${r.rowsAffected} (as the script's statements reported them); none of it was kept`];
  }
  if (!entries.length) return [r.status === 'backup-failed' || r.status === 'interrupted' ? '' : '  no table changed'];
  const width = Math.max(5, ...entries.map(([t]) => t.length));
  const head = `  ${'table'.padEnd(width)}  inserted   updated   deleted   rows before -> after`;
  const rows = entries.map(([table, c]) => {
    const before = r.counts.pre[table];
    const after = r.status === 'committed' || r.status === 'escaped' ? r.counts.post[table] : r.counts.inTransaction[table];
    const flags = [c.truncated ? 'TRUNCATE' : '', c.ddl ? 'DDL' : ''].filter(Boolean).join(' ');
    const estimate = r.counts.estimated.includes(table) ? ' (estimate)' : '';
    const rowsText = before !== undefined && after !== undefined ? `${before} -> ${after}${estimate}` : '';
    return `  ${table.padEnd(width)}  ${String(c.inserted).padStart(8)}  ${String(c.updated).padStart(8)}  ${String(c.deleted).padStart(8)}   ${rowsText}${flags ? `  ${flags}` : ''}`;
  });
  return [head, ...rows];
}

function guardLine(r: RunResult): string {
  if (r.status === 'backup-failed' || r.status === 'interrupted' || r.status === 'failed') return '';
  if (r.status === 'escaped')
    return `  guards: ${r.violations.length} violation(s); the script's own COMMIT put its changes beyond rollback:`;
  return r.violations.length ? `  guards: ${r.violations.length} violation(s), transaction rolled back:` : '  guards: passed';
}

/** One line for a backup record; `exec` prints the same. */
export function backupLine(b: BackupRecord, dryRun = false): string {
  if (b.pitr) return `  backup: ${pitrDescription(b.pitr)}`;
  if (b.status === 'skipped') return `  backup: none (${dryRun ? 'a dry run takes no backup' : skippedWhy(b)})`;
  if (b.status === 'failed') return `  backup: FAILED: ${b.error ?? ''}`;
  return `  backup: ${b.path}  ${formatBytes(b.bytes)}  sha256 ${b.sha256?.slice(0, 16)}…  verified, ${b.tables.length} table(s)`;
}

function skippedWhy(b: BackupRecord): string {
  return b.scope === 'none' ? 'scope "none"' : `scope "${b.scope}" holds no table`;
}

function nextStep(r: RunResult): string {
  switch (r.status) {
    case 'committed':
      return `  next: safe-run show ${r.runId}`;
    case 'guard-violation':
      return '  next: declare the tables/operations in the script if this was intended, or fix the script. Nothing was changed.';
    case 'backup-failed':
      return '  next: fix the backup problem above (`safe-run doctor` checks pg_dump and the evidence directory). Nothing was changed.';
    case 'failed':
      return '  next: fix the script error above. Nothing was changed.';
    case 'dry-run':
      return '  next: run again without --dry-run to apply.';
    case 'interrupted':
      return '  next: nothing was changed; run it again when ready.';
    case 'escaped':
      return `  next: the changes above are committed. Restore what is needed from this run's backup (safe-run restore ${r.runId}), and fix the script.`;
    default:
      return '';
  }
}

/** backup.mode "pgbackrest": no dump; where a point-in-time restore starts and stops. */
export function pitrDescription(pitr: PitrIntentRecord): string {
  return `pgBackRest stanza ${pitr.stanza}, set ${pitr.backupLabel}, pre-run WAL ${pitr.preRunLsn} (no dump: restore --pitr rewinds to here)`;
}

/** Whether the measurements could have been blinded from inside the script's session. */
export function trustLine(trust: 'role' | 'superuser'): string {
  return trust === 'role'
    ? '  trust: role (the script ran as a non-superuser: it could not switch counting or triggers off)'
    : '  trust: superuser (the script could switch counting off between statements; set scriptRole for full trust)';
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} kB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** Findings of one kind shown one by one; more than this become one line (the JSON and `safe-run check` keep each). */
const DRIFT_LINES_PER_KIND = 3;

/**
 * What changed since the last observation, before the run. A schema recreated or migrated
 * changes every table at once: a hundred lines of it would bury the run's own verdict.
 */
function driftLines(drift: RunResult['drift']): string[] {
  const byKind = new Map<string, RunResult['drift'][number][]>();
  for (const d of drift) byKind.set(d.kind, [...(byKind.get(d.kind) ?? []), d]);
  return [...byKind].flatMap(([kind, findings]) => {
    if (findings.length <= DRIFT_LINES_PER_KIND)
      return findings.map((d) => `  drift since the last observation: ${kind}${d.table ? ` ${d.table}` : ''}: ${d.detail}`);
    const tables = findings.flatMap((d) => (d.table ? [d.table] : []));
    const named = `${tables.slice(0, DRIFT_LINES_PER_KIND).join(', ')} and ${findings.length - DRIFT_LINES_PER_KIND} more`;
    return [
      `  drift since the last observation: ${kind} ${findings.length} times (${named}); the first: ${findings[0]!.detail}. \`safe-run check\` lists each`,
    ];
  });
}
