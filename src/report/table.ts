import { isOutside, type BlameChange } from '../blame/attribute.js';
import type { BlameAnalysis, BlameObservation } from '../blame/blame.js';
import { formatDelta } from '../snapshot/counters.js';
import { chart, heading, inlineCode, list, paragraph, table, title, type Block } from './blocks.js';
import { tableCallout } from './callout.js';
import { tableChart } from './chart.js';
import { evidenceBlocks, restoreBlocks, type CitedEntry, type VerificationOutcome } from './evidence.js';
import type { RestoreSource } from '../blame/restore-source.js';
import { describeEvent } from '../blame/window-events.js';
import { shortName, type Verdict } from '../blame/verdict.js';
import { summarizeStatements } from '../blame/session-groups.js';
import type { RunFacts } from '../blame/windows.js';
import { suggest } from '../shell-quote.js';
import { byCodeUnit } from '../text-order.js';

/** The post-mortem of one table, in the order the incident document should have had. */
export interface TableReportInput {
  readonly analysis: BlameAnalysis;
  readonly verdict: Verdict;
  readonly restore: RestoreSource | null;
  readonly verification: VerificationOutcome;
  readonly logFile: string;
  readonly generatedAt: string;
}

const MAX_TIMELINE = 40;
const MAX_RUNS = 50;

export function tableReportBlocks(input: TableReportInput): Block[] {
  const { analysis: a, verdict } = input;
  const name = shortName(a.table);
  const runsOnTable = a.runs.filter((r) => r.run.outcome?.changes[a.table]);
  const outside = a.changes.filter((c) => isOutside(c.attribution));
  const last = a.observations[a.observations.length - 1];
  return [
    title(`Post-mortem: ${inlineCode(a.table)} on ${a.database ?? 'unknown database'}`),
    tableCallout(a.table, verdict, input.verification),
    chart(tableChart(a)),
    paragraph(`Written by safe-run at ${input.generatedAt} from the signed audit log ${inlineCode(input.logFile)}, not from memory.`),
    heading('Summary'),
    list([
      `Now: ${inlineCode(name)} has **${last?.rows ?? '-'}** rows (${last?.kind === 'live' ? 'live database' : `last observation ${last?.ts ?? '?'}`}).`,
      `${a.observations.length} signed observations of ${inlineCode(a.table)}, ${a.runs.length} guarded run(s) on this database, ${runsOnTable.length} of which changed ${inlineCode(name)}.`,
      `${a.changes.length} change(s): ${a.changes.length - outside.length} made by guarded runs, ${outside.length} outside any guarded run.`,
      `Verdict: ${verdict.sentences[0] ?? ''}`,
    ]),
    ...currentState(a),
    heading('Timeline'),
    table(['time', 'entry', `rows of ${name}`, 'what happened'], timelineRows(a)),
    heading(`Guarded runs that changed ${inlineCode(name)}`),
    ...runsSection(a, verdict),
    heading('Changes outside guarded runs'),
    ...outsideSection(outside, name),
    heading('Verdict'),
    ...verdict.sentences.map(paragraph),
    ...evidenceBlocks(cite(a, verdict), input.verification, input.logFile),
    ...restoreBlocks(input.restore, a.table),
  ];
}

function currentState(a: BlameAnalysis): Block[] {
  if (!a.current) return [];
  const rowsOf = Object.entries(a.current.tables).sort(([x], [y]) => byCodeUnit(x, y));
  return [
    heading('Current state'),
    paragraph(`Table counts in the live database at ${a.current.at}:`),
    table(
      ['table', 'rows', 'note'],
      rowsOf.map(([k, t]) => [
        k === a.table ? `**${k}**` : k,
        `${t.rows}${t.rowsKind === 'estimate' ? ' (estimate)' : ''}`,
        t.rows === 0 ? 'EMPTY' : '',
      ]),
    ),
  ];
}

function outsideSection(outside: readonly BlameChange[], name: string): Block[] {
  if (!outside.length)
    return [paragraph(`None: every change of ${inlineCode(name)} between observations is explained by a guarded run's own transaction.`)];
  const shown = outside.slice(-MAX_RUNS);
  return [
    table(
      ['between', 'and', 'rows', 'counters', 'events'],
      shown.map((c) => [
        isOutside(c.attribution) ? c.attribution.after : c.from,
        isOutside(c.attribution) ? c.attribution.before : c.to,
        `${rows(c.before)} → ${rows(c.after)}`,
        formatDelta(c.counters ?? null),
        [...(c.attribution.type === 'session' ? summarizeStatements(c.attribution.statements) : []), ...c.events.map(describeEvent)].join(
          '; ',
        ) || '-',
      ]),
    ),
    ...(outside.length > shown.length
      ? [paragraph(`(the ${shown.length} most recent of ${outside.length} windows; \`${suggest('blame', name, '--json')}\` has them all)`)]
      : []),
  ];
}

/** Every observation when there are few; otherwise those around the latest changes, and the ends. */
function timelineRows(a: BlameAnalysis): string[][] {
  const obs = a.observations;
  const runs = new Map(a.runs.map((r) => [r.run.runId, r]));
  const keep = new Set<number>([0, obs.length - 1]);
  if (obs.length > MAX_TIMELINE) {
    const bySeq = new Map(obs.map((o, i) => [o.seq ?? -1, i]));
    for (const c of a.changes.slice(-MAX_TIMELINE / 2)) {
      keep.add(bySeq.get(c.fromSeq ?? -1) ?? -1);
      keep.add(c.toSeq === null ? obs.length - 1 : (bySeq.get(c.toSeq) ?? -1));
    }
  } else obs.forEach((_, i) => keep.add(i));
  const rowsOut: string[][] = [];
  let skipped = 0;
  obs.forEach((o, i) => {
    if (!keep.has(i)) return void skipped++;
    if (skipped) {
      rowsOut.push(['…', `${skipped} observations without a change`, '', '']);
      skipped = 0;
    }
    rowsOut.push([
      o.ts,
      o.seq === null ? 'now' : `#${o.seq} ${o.kind}`,
      `${rows(o.rows)}${o.rowsKind === 'estimate' ? ' (estimate)' : ''}`,
      whatHappened(o, o.runId ? runs.get(o.runId) : undefined),
    ]);
  });
  return rowsOut;
}

const WHAT: Readonly<Record<string, (owner: string) => string>> = {
  'run.intent': (owner) => `before ${owner}`,
  'run.post': (owner) => `after ${owner} committed`,
  'exec.intent': (owner) => `before ${owner}`,
  'exec.outcome': (owner) => `after ${owner}`,
  snapshot: () => 'snapshot',
  live: () => 'live database',
};

function whatHappened(o: BlameObservation, run: RunFacts | undefined): string {
  const owner = `${ownerLabel(run)}${o.script ?? 'run'} (${o.runId})`;
  const what = WHAT[o.kind]?.(owner) ?? o.kind;
  return [what, ...o.events.map(describeEvent)].join('; ');
}

/** A dry run or a rolled-back run saw the table too, but must not read like one that changed it. */
function ownerLabel(run: RunFacts | undefined): string {
  if (!run?.run.intent) return '';
  if (run.run.intent.dryRun) return 'dry run of ';
  return run.status.committed ? '' : `${run.status.status} run of `;
}

function runsSection(a: BlameAnalysis, verdict: Verdict): Block[] {
  const changed = a.runs.filter((r) => r.run.outcome?.changes[a.table]);
  const blocks: Block[] = [];
  if (changed.length) {
    const shown = changed.slice(-MAX_RUNS);
    blocks.push(
      table(
        ['time', 'run', 'script', 'status', 'trust', 'inserted', 'updated', 'deleted'],
        shown.map((r) => {
          const c = r.run.outcome!.changes[a.table]!;
          return [
            r.run.intent?.ref.ts ?? '?',
            inlineCode(r.run.runId),
            r.run.intent?.script ?? '?',
            r.status.status,
            // Whether the script could have switched counting off (docs/security.md); '-' before it was recorded.
            r.run.outcome?.trust ?? '-',
            String(c.inserted),
            String(c.updated),
            `${c.deleted}${c.truncated ? ' (TRUNCATE)' : ''}`,
          ];
        }),
      ),
    );
    if (changed.length > shown.length)
      blocks.push(
        paragraph(`(the ${shown.length} most recent of ${changed.length}; \`${suggest('log', '--table', a.table)}\` lists them all)`),
      );
  } else {
    blocks.push(
      paragraph(
        `No guarded run changed ${inlineCode(shortName(a.table))}: their signed outcomes record 0 inserted, 0 updated and 0 deleted rows for it.`,
      ),
    );
  }
  const s = verdict.suspect;
  if (s && verdict.decisive && isOutside(verdict.decisive.attribution)) {
    const own = Object.entries(s.run.outcome?.changes ?? {}).map(
      ([t, c]) => `${inlineCode(t)} (${c.inserted} inserted, ${c.updated} updated, ${c.deleted} deleted)`,
    );
    blocks.push(
      paragraph(
        `The last guarded run before the change, ${s.run.intent?.script ?? '?'} (${inlineCode(s.run.runId)}, ${s.status.status}), changed only: ${own.join(', ') || 'nothing'}.`,
      ),
    );
  }
  return blocks;
}

function cite(a: BlameAnalysis, verdict: Verdict): CitedEntry[] {
  const cited: CitedEntry[] = [];
  const d: BlameChange | null = verdict.decisive;
  for (const o of a.observations) {
    if (o.seq === null || !o.hash) continue;
    if (d && (o.seq === d.fromSeq || o.seq === d.toSeq))
      cited.push({
        seq: o.seq,
        kind: o.kind,
        ts: o.ts,
        hash: o.hash,
        why: `${rows(o.rows)} rows of ${shortName(a.table)} around the verdict's change`,
      });
  }
  const s = verdict.suspect?.run;
  for (const ref of [s?.intent?.ref, s?.outcome?.ref, s?.post?.ref]) {
    if (ref?.seq && ref.hash)
      cited.push({
        seq: ref.seq,
        kind: ref.kind,
        ts: ref.ts,
        hash: ref.hash,
        why: `${s!.intent?.script ?? 'run'} ${s!.runId}: ${ref.kind === 'run.outcome' ? 'its exact changes' : ref.kind === 'run.intent' ? 'pre-snapshot and backup' : 'post-snapshot'}`,
      });
  }
  return cited;
}

function rows(n: number | null): string {
  return n === null ? '(absent)' : String(n);
}
