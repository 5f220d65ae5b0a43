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
  lines.push(renderRunSummary(r.run));
  return lines.join('\n');
}
