import type { ReinsertResult } from './run.js';
import { renderRunSummary } from '../run/summary.js';

/** What restore --in-place, undo and recover print: per table what went back, then the run's own summary. */
export function renderReinsert(r: ReinsertResult): string {
  const entries = Object.entries(r.tables);
  const width = Math.max(5, ...entries.map(([t]) => t.length));
  const lines = [
    `  ${'table'.padEnd(width)}   offered  inserted   skipped   updated   deleted  relinked   (skipped: its primary key exists now)`,
  ];
  for (const [table, c] of entries) {
    const cells = [c.offered, c.inserted, c.skipped, c.updated, c.deleted, c.relinked].map((n) => String(n).padStart(8)).join('  ');
    lines.push(`  ${table.padEnd(width)}  ${cells}`);
  }
  if (!entries.length) lines.push('  nothing was put back');
  lines.push(renderRunSummary(r.run, r.run.status === 'failed' ? failedNextStep(r) : undefined));
  return lines.join('\n');
}

/**
 * A put-back that failed ran no script of the operator's: say what to do about the rows. The
 * usual failure is a foreign key: the rows refer to rows of a table that is gone too (a parent
 * that was not protected with kept rows, or not part of this put-back).
 */
function failedNextStep(r: ReinsertResult): string {
  const command = r.run.script;
  if (r.run.error?.code !== '23503') {
    return `  next: nothing was put back and nothing was changed. Fix what the error says, then run the same ${command} again.`;
  }
  const parent = /is not present in table "([^"]+)"/.exec(r.run.error.detail ?? '')?.[1] ?? 'the table the detail names';
  return [
    `  next: nothing was put back: these rows refer to rows of ${parent} that are not there now. Put those back first`,
    `        (\`safe-run recover --table ${parent} --since <date>\` if the ledger kept them, or \`safe-run restore <run> --in-place --table ${parent}\``,
    `        from a backup: \`safe-run backups\` lists them), then run the same ${command} again.`,
  ].join('\n');
}
