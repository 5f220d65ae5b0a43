import type { CommandBody } from './registry.js';
import type { BlameChange, SessionStatement } from '../blame/attribute.js';
import type { TableKey } from '../records/index.js';
import { describeGroup, groupDetails, groupStatements, MAX_LISTED, shownGroups } from '../blame/session-groups.js';
import { blameTable, type BlameResult } from '../blame/blame.js';
import { formatDelta } from '../snapshot/counters.js';
import { optionalSince } from './since.js';
import { describeEvent } from '../blame/window-events.js';
import { describeSession, ledgerOffLines, sessionDetails } from '../blame/sessions.js';
import { emit, withEvidenceContext, type GlobalArgs } from './context.js';

export { blameTable };

const MAX_SHOWN = 30;

function renderBlame(r: BlameResult): string {
  const head = `blame ${r.table} on ${r.database ?? '?'}: ${r.observations.length} observations, ${r.changes.length} change(s)`;
  if (!r.changes.length) {
    const first = r.observations[0];
    const last = r.observations[r.observations.length - 1];
    return `${head}\n  no change: ${last?.rows ?? '-'} rows from ${first?.ts ?? '?'} to ${last?.ts ?? '?'}`;
  }
  // A terminal wants the recent story; --since or --json give the rest.
  const shown = r.changes.slice(-MAX_SHOWN);
  const hidden = r.changes.length - shown.length;
  return [
    head,
    ...(hidden ? [`  … ${hidden} earlier change(s) not shown (narrow with --since, or use --json)`] : []),
    ...shown.map((c) => renderChange(c, r.table)),
  ].join('\n');
}

export function rowsText(n: number | null): string {
  return n === null ? '(absent)' : String(n);
}

function renderChange(c: BlameChange, table: TableKey): string {
  const counts = `${rowsText(c.before)} -> ${rowsText(c.after)}${c.exact ? '' : ' (estimate)'}`;
  if (c.attribution.type === 'run') {
    const ch = c.change!;
    const marks = [c.escaped ? 'ESCAPED the guard: committed by the script itself' : '', c.trust ? `trust ${c.trust}` : ''].filter(Boolean);
    return `  ${counts.padEnd(14)} run ${c.attribution.runId} ${c.attribution.script}: inserted ${ch.inserted}, updated ${ch.updated}, deleted ${ch.deleted}${ch.truncated ? ', TRUNCATE' : ''}  (${c.toTs})${marks.length ? `  [${marks.join('; ')}]` : ''}`;
  }
  const notes = [c.counters !== undefined ? `counters: ${formatDelta(c.counters ?? null)}` : '', ...c.events.map(describeEvent)].filter(
    Boolean,
  );
  const off = (c.ledgerOff ?? []).flatMap((o) => ledgerOffLines(table, o).map((l, i) => `${i ? '        ' : '      '}${l}`));
  if (c.attribution.type === 'session') {
    const during = c.attribution.runId ? `  (another session, during run ${c.attribution.runId} ${c.attribution.script ?? ''})` : '';
    return [
      `  ${counts.padEnd(14)} ${c.attribution.statements.length} statement(s) named by the change ledger${during}`,
      ...off,
      ...renderStatements(c.attribution.statements, table),
    ].join('\n');
  }
  if (c.ledgerLost) notes.push(c.ledgerLost);
  const who =
    c.attribution.type === 'concurrent'
      ? `OUTSIDE the run's transaction: another session, during run ${c.attribution.runId} ${c.attribution.script}`
      : 'OUTSIDE any guarded run';
  return [
    `  ${counts.padEnd(14)} ${who}`,
    `      between ${c.attribution.after}`,
    `      and     ${c.attribution.before}`,
    ...(notes.length ? [`      ${notes.join('; ')}`] : []),
    ...off,
  ].join('\n');
}

/** A few statements one by one; more grouped by session and operation (session-groups.ts), every one in --json. */
function renderStatements(statements: readonly SessionStatement[], table: TableKey): string[] {
  const entry = (head: string, details: readonly string[]): string[] => [`      ${head}:`, ...details.map((l) => `        ${l}`)];
  if (statements.length <= MAX_LISTED) return statements.flatMap((s) => entry(describeSession(s), sessionDetails(s)));
  const groups = groupStatements(statements);
  const { shown, hiddenGroups, hiddenStatements } = shownGroups(groups);
  return [
    `      in ${groups.length} group(s) by session and operation; each statement: --json`,
    ...shown.flatMap((g) => entry(describeGroup(g), groupDetails(g, table))),
    ...(hiddenGroups ? [`      … ${hiddenGroups} more group(s) with ${hiddenStatements} statement(s): --json`] : []),
  ];
}

interface BlameArgs extends GlobalArgs {
  readonly table: string;
  readonly since?: string;
  readonly live?: boolean;
}

export const blameCommand: CommandBody<BlameArgs> = {
  builder: (yargs) =>
    yargs
      .positional('table', { type: 'string', demandOption: true, describe: 'schema.table (unqualified means public)' })
      .option('since', { type: 'string', describe: 'Only changes since this ISO date or this long ago ("2h", "3d")' })
      .option('live', { type: 'boolean', default: true, describe: 'Add the live table as the last observation (--no-live: the log only)' })
      .example('$0 blame users', 'Who changed users, and what happened outside guarded runs')
      .example('$0 blame users --json', 'Every ledger statement behind each change (the text groups more than 10 by session)'),
  handler: async (argv) => {
    await withEvidenceContext(argv, async (ctx, target) => {
      const options = { table: argv.table, since: optionalSince(argv.since), live: argv.live !== false };
      emit(ctx, await blameTable(ctx.config, options, target, ctx.log), renderBlame);
    });
  },
};
