import type { CommandBody } from './registry.js';
import { pitrDescription, trustLine } from '../run/summary.js';
import { violationSubject } from '../records/index.js';
import { showRun, type RunRecord } from '../history/run-record.js';
import { isLatestRef, resolveRunRef } from '../history/latest-run.js';
import { usageError } from '../errors.js';
import { emit, withEvidenceContext, type GlobalArgs } from './context.js';
import { suggest } from '../shell-quote.js';

export { showRun };

/**
 * The human form answers the incident's question first (what did this run change, exactly),
 * then gives the evidence to back it: counts, backup, WAL bracket, entry hashes.
 */
function renderRun(r: RunRecord): string {
  const i = r.intent;
  const lines = [
    `run ${r.runId}  ${i?.script.name ?? '?'}  ${r.status.status.toUpperCase()}${r.status.note ? `  (${r.status.note})` : ''}`,
  ];
  if (i) {
    const op = i.operator;
    lines.push(`  database  ${r.database}${i.dryRun ? '  (dry run)' : ''}`);
    lines.push(`  operator  ${op.osUser}${op.gitUser ? ` / ${op.gitUser}${op.gitEmail ? ` <${op.gitEmail}>` : ''}` : ''} on ${i.host}`);
    if (i.reason) lines.push(`  reason    ${i.reason}`);
    lines.push(
      `  script    ${i.script.path}  sha256 ${i.script.sha256.slice(0, 16)}…${i.script.git ? `  git ${i.script.git.commit.slice(0, 12)}${i.script.git.dirty ? ' (dirty)' : ''}` : ''}`,
    );
    if (i.args.length) lines.push(`  args      ${i.args.join(' ')}`);
  }
  lines.push('', ...changeLines(r));
  if (r.outcome?.trust) lines.push(trustLine(r.outcome.trust));
  const concurrent = Object.entries(r.outcome?.concurrentWrites?.tables ?? {});
  for (const [t, c] of concurrent)
    lines.push(
      `  other sessions during the run: ${t} inserted ${c.inserted}, updated ${c.updated}, deleted ${c.deleted} (from statistics; late writes may be missing)`,
    );
  lines.push(...ledgerLines(r));
  for (const v of r.violations) lines.push(`  violation ${violationSubject(v)}: ${v.rule}: ${v.detail}`);
  if (r.error) lines.push(`  error     ${r.error.message}${r.error.code ? ` (${r.error.code})` : ''}`);
  for (const d of r.drift) lines.push(`  drift before the run: ${d.kind}${d.table ? ` ${d.table}` : ''}: ${d.detail}`);
  lines.push('', ...backupLines(r));
  const w = r.wal;
  lines.push(
    `  wal       pre-snapshot ${w.preSnapshotLsn ?? '?'}, tx start ${w.startLsn ?? '?'}, xid ${w.xid ?? '?'}${w.commitLsn ? `, commit ${w.commitLsn}` : ''}`,
  );
  lines.push('  entries');
  for (const e of r.entries) lines.push(`    #${e.seq} ${e.kind.padEnd(17)} ${e.ts}  ${e.hash}`);
  for (const e of r.related) lines.push(`    #${e.seq} ${e.kind.padEnd(17)} ${e.ts}  ${e.hash}  (refers to this run)`);
  return lines.join('\n');
}

/**
 * The change ledger is the second witness of what the run did: its statements, counted by the
 * triggers, must match the changes the run measured. A disagreement is shown, never smoothed over.
 */
function ledgerLines(r: RunRecord): string[] {
  const ledger = r.outcome?.ledger;
  if (!ledger) return [];
  if (!ledger.disagreements.length)
    return [`  ledger    ${ledger.statements} statement(s), ${ledger.keptRows} row(s) kept; agrees with the measured changes`];
  return [
    `  ledger    ${ledger.statements} statement(s) DISAGREE with the measured changes:`,
    ...ledger.disagreements.map((d) => `            ${d.table}: ${d.detail}`),
  ];
}

/** Every table the run changed, plus the critical and declared ones: those are the ones people ask about. */
function changeLines(r: RunRecord): string[] {
  const interesting = new Set([
    ...Object.keys(r.changes),
    ...(r.intent?.script.critical ?? []),
    ...Object.keys(r.intent?.script.touches ?? {}),
  ]);
  for (const [t, n] of Object.entries(r.counts.pre)) if (n !== r.counts.post?.[t] && r.counts.post) interesting.add(t);
  const tables = [...interesting].sort();
  if (!tables.length) return ['  no table changed'];
  const width = Math.max(5, ...tables.map((t) => t.length));
  const lines = [`  ${'table'.padEnd(width)}  inserted  updated  deleted   rows pre -> post`];
  for (const t of tables) {
    const c = r.changes[t];
    const pre = r.counts.pre[t];
    const post = r.counts.post?.[t];
    const estimate = r.counts.estimated.includes(t) ? ' (estimate)' : '';
    const rows = `${pre ?? '-'} -> ${post ?? (r.counts.inTransaction[t] !== undefined ? `${r.counts.inTransaction[t]} (in tx)` : '-')}${estimate}`;
    const flags = [c?.truncated ? 'TRUNCATE' : '', c?.ddl ? 'DDL' : ''].filter(Boolean).join(' ');
    lines.push(
      `  ${t.padEnd(width)}  ${String(c?.inserted ?? 0).padStart(8)}  ${String(c?.updated ?? 0).padStart(7)}  ${String(c?.deleted ?? 0).padStart(7)}   ${rows}${flags ? `   ${flags}` : ''}`,
    );
  }
  return lines;
}

function backupLines(r: RunRecord): string[] {
  const b = r.backup;
  if (!b) return ['  backup    none recorded'];
  if (b.status !== 'verified') return [`  backup    ${b.status}${b.error ? `: ${b.error}` : ''}`];
  if (b.pitr)
    return [
      `  backup    ${pitrDescription(b.pitr)}`,
      `            restore: safe-run restore ${r.runId} --pitr --data-dir /var/tmp/pitr-${r.runId}`,
    ];
  const check = r.backupCheck;
  const now = r.pruned
    ? `  PRUNED at ${r.pruned.ts} (signed prune entry #${r.pruned.seq})`
    : !check
      ? ''
      : !check.exists
        ? '  MISSING NOW'
        : check.sha256Matches === false
          ? '  CHANGED SINCE (sha256 differs)'
          : check.sha256Matches
            ? '  sha256 still matches'
            : '';
  // The tables people want back are the ones the run changed.
  const restoreTable = Object.keys(r.changes).find((t) => b.tables.includes(t)) ?? b.tables[0];
  const tables =
    b.tables.length > 4 ? `${b.tables.slice(0, 4).join(', ')}, … (${b.tables.length} tables)` : b.tables.join(', ') || '(none)';
  return [
    `  backup    ${b.path}  verified at run time (pg_restore --list)${now}`,
    `            sha256 ${b.sha256}`,
    `            tables ${tables}`,
    r.pruned
      ? '            restore: not from this run any more; `safe-run backups` lists the backups that are left'
      : `            restore: ${restoreTable ? suggest('restore', r.runId, '--table', restoreTable) : suggest('restore', r.runId)}`,
  ];
}

interface ShowArgs extends GlobalArgs {
  readonly run: string;
  readonly script?: string;
}

export const showCommand: CommandBody<ShowArgs> = {
  builder: (yargs) =>
    yargs
      .positional('run', { type: 'string', demandOption: true, describe: 'Run id, a unique prefix of it, or `last`' })
      .option('script', { type: 'string', describe: 'With `last`: the newest run of this script' })
      .example('$0 show last', 'The run that just happened')
      .example('$0 show last --script cleanup-invalid-sessions', 'The newest run of one script')
      .example('$0 show 01JD4Q', 'A run by a unique prefix of its id'),
  handler: async (argv) => {
    await withEvidenceContext(argv, async (ctx, target) => {
      if (argv.script && !isLatestRef(argv.run))
        throw usageError('--script goes with `show last`.', `safe-run show last --script ${argv.script}`);
      const runId = await resolveRunRef(ctx.config, argv.run, ctx.log, { script: argv.script });
      emit(ctx, await showRun(ctx.config, runId, target, ctx.log), renderRun);
    });
  },
};
