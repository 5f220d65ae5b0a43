import type { Argv } from 'yargs';
import type { CommandBody } from './registry.js';
import { ExitCode } from '../errors.js';
import { checkDatabase, type CheckResult } from '../history/check.js';
import { describeRef } from '../history/entry-ref.js';
import type { OpenFinding } from '../history/open-findings.js';
import { DriftKindSchema } from '../records/index.js';
import { suggest, typedTable } from '../shell-quote.js';
import { emit, withEvidenceContext, type GlobalArgs } from './context.js';

export { checkDatabase };

function renderCheck(r: CheckResult): string {
  const against = r.against.seq ? `newest observation #${r.against.seq} ${r.against.kind} at ${r.against.ts}` : 'no observation yet';
  const acked = r.acknowledged ? `, ${r.acknowledged} acknowledged` : '';
  const open = r.findings.filter(isOpenFinding);
  const others = r.findings.filter((f) => !isOpenFinding(f));
  const lines =
    r.status === 'clean'
      ? [`check ${r.database}: clean (no open findings; ${against}${acked})`]
      : [`check ${r.database}: DRIFT, ${open.length} open finding(s) (${against}${acked})`];
  for (const f of open) {
    lines.push(`  ${f.id}  first seen ${describeRef(f.firstSeen)}`, `      ${f.detail}`);
  }
  for (const f of others) lines.push(`  ${f.kind}  ${f.detail}`);
  if (r.status === 'drift') {
    // The critical table is the one the operator is about to be asked about.
    const table = (open.find((f) => f.kind.startsWith('critical-')) ?? open.find((f) => f.table))?.table;
    lines.push(table ? `  next: ${suggest('blame', typedTable(table))}` : `  next: ${suggest('log')}`);
    // Every open id: one drift (a db reset) opens a finding per table, and one answer covers them.
    lines.push(`  once answered: ${suggest('ack', ...open.map((f) => f.id), '--reason', 'what happened and what was done')}`);
  }
  return lines.join('\n');
}

function isOpenFinding(f: CheckResult['findings'][number]): f is OpenFinding {
  return 'id' in f;
}

/**
 * The node_exporter textfile-collector format, so existing alerting picks check up: open
 * findings per kind (every kind, 0 included, so an alert can watch one series), live rows of
 * each critical table, and how old the newest signed observation is (a stalled cron).
 */
export function renderPrometheus(r: CheckResult): string {
  const db = `database="${label(r.database)}"`;
  const open = r.findings.filter(isOpenFinding);
  const lines = [
    '# HELP safe_run_open_findings Open (not acknowledged) safe-run check findings, by kind.',
    '# TYPE safe_run_open_findings gauge',
    ...DriftKindSchema.options.map((kind) => `safe_run_open_findings{${db},kind="${kind}"} ${open.filter((f) => f.kind === kind).length}`),
    '# HELP safe_run_critical_table_rows Live row count of each critical table (absent: the table does not exist).',
    '# TYPE safe_run_critical_table_rows gauge',
    ...Object.entries(r.critical).flatMap(([table, c]) =>
      c.rows === null ? [] : [`safe_run_critical_table_rows{${db},table="${label(table)}"} ${c.rows}`],
    ),
    '# HELP safe_run_last_observation_age_seconds Seconds since the newest signed observation (snapshot or run) of the database.',
    '# TYPE safe_run_last_observation_age_seconds gauge',
    `safe_run_last_observation_age_seconds{${db}} ${ageSeconds(r)}`,
  ];
  return lines.join('\n');
}

function ageSeconds(r: CheckResult): string {
  if (!r.against.seq) return 'NaN';
  return Math.max(0, (Date.parse(r.checkedAt) - Date.parse(r.against.ts)) / 1000).toFixed(3);
}

/** Label values escape backslash, double quote and newline (exposition format). */
function label(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

interface CheckArgs extends GlobalArgs {
  readonly format?: 'text' | 'json' | 'prometheus';
}

export const checkCommand: CommandBody<CheckArgs> = {
  builder: (yargs: Argv<GlobalArgs>) =>
    yargs
      .option('format', {
        choices: ['text', 'json', 'prometheus'] as const,
        describe: 'Output: text (default), json (same as --json), prometheus (node_exporter textfile collector)',
      })
      .example('$0 check', 'Open findings with their ids and when each was first seen')
      .example('$0 check --format prometheus > safe_run.prom.tmp; mv safe_run.prom.tmp safe_run.prom', 'For the textfile collector')
      .epilog(
        'Exit codes: 0 no open finding, 10 at least one open finding (answer it with `safe-run ack <id> --reason R`).',
      ) as Argv<CheckArgs>,
  handler: async (argv) => {
    await withEvidenceContext(argv, async (ctx, target) => {
      const result = await checkDatabase(ctx.config, target, ctx.log);
      const code = result.status === 'drift' ? ExitCode.drift : ExitCode.ok;
      if (argv.format === 'prometheus') emit({ json: false }, result, renderPrometheus, code);
      else emit({ json: ctx.json || argv.format === 'json' }, result, renderCheck, code);
    });
  },
};
