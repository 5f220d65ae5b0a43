import type { CommandBody } from './registry.js';
import type { TableChange } from '../records/index.js';
import { runHistory, type History, type HistoryRow } from '../history/run-log.js';
import { optionalSince } from './since.js';
import { emit, withEvidenceContext, type GlobalArgs } from './context.js';

export { runHistory };

/** `oidc_models -5`, `users +2 ~1 -0`: inserted, updated, deleted at a glance. */
export function formatChange(table: string, c: TableChange): string {
  const parts = [
    c.inserted ? `+${c.inserted}` : '',
    c.updated ? `~${c.updated}` : '',
    c.deleted ? `-${c.deleted}` : '',
    c.truncated ? 'TRUNCATE' : '',
    c.ddl ? 'DDL' : '',
  ].filter(Boolean);
  return `${table.replace(/^public\./, '')} ${parts.join(' ') || '0'}`;
}

function renderHistory(h: History): string {
  if (!h.runs.length) return h.total ? `No run matches (${h.total} runs in the log).` : 'No runs recorded yet.';
  const databases = new Set(h.runs.map((r) => r.database));
  const scriptWidth = Math.max(6, ...h.runs.map((r) => r.script.length));
  const statusWidth = Math.max(6, ...h.runs.map((r) => r.status.length + (r.dryRun && r.status !== 'dry-run' ? 6 : 0)));
  const lines = h.runs.map((r) => renderRow(r, scriptWidth, statusWidth, databases.size > 1));
  const notes = h.runs.filter((r) => r.statusNote).map((r) => `  ${r.runId}: ${r.statusNote}`);
  return [...lines, ...(notes.length ? ['', ...notes] : [])].join('\n');
}

function renderRow(r: HistoryRow, scriptWidth: number, statusWidth: number, showDatabase: boolean): string {
  const time = r.ts.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  const changes = r.counts
    ? Object.entries(r.counts).map(([t, c]) => `${t.replace(/^public\./, '')} ${c.before ?? '(absent)'}->${c.after ?? '(absent)'}`)
    : Object.entries(r.changes).map(([t, c]) => formatChange(t, c));
  const status = r.dryRun && r.status !== 'dry-run' ? `${r.status} (dry)` : r.status;
  return [
    time,
    r.runId,
    r.script.padEnd(scriptWidth),
    status.padEnd(statusWidth),
    r.operator,
    changes.join(', ') || '-',
    showDatabase ? `[${r.database}]` : '',
  ]
    .filter((s, i) => i < 6 || s)
    .join('  ');
}

interface LogArgs extends GlobalArgs {
  readonly script?: string;
  readonly table?: string;
  readonly since?: string;
}

export const logCommand: CommandBody<LogArgs> = {
  builder: (yargs) =>
    yargs
      .option('script', { type: 'string', describe: 'Only runs of this script' })
      .option('table', { type: 'string', describe: 'Only runs that changed this table (schema.table; unqualified means public)' })
      .option('since', { type: 'string', describe: 'Only runs since this ISO date or this long ago ("2h", "3d")' })
      .example('$0 log --table users --since 3d', 'Which runs changed users in the last three days'),
  handler: async (argv) => {
    await withEvidenceContext(argv, async (ctx, target) => {
      const filter = { script: argv.script, table: argv.table, since: optionalSince(argv.since) };
      emit(ctx, await runHistory(ctx.config, filter, target, ctx.log), renderHistory);
    });
  },
};
