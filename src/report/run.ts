import { trustLine } from '../run/summary.js';
import { violationSubject } from '../records/index.js';
import { heading, inlineCode, list, paragraph, table, title, type Block } from './blocks.js';
import { runCallout } from './callout.js';
import { evidenceBlocks, restoreBlocks, type VerificationOutcome } from './evidence.js';
import type { RunRecord } from '../history/run-record.js';
import { runEffect, shortName } from '../blame/verdict.js';

/** `safe-run report <run>`: what one run did, exactly, and how to undo it. */
export interface RunReportInput {
  readonly record: RunRecord;
  readonly verification: VerificationOutcome;
  readonly logFile: string;
  readonly generatedAt: string;
}

export function runReportBlocks(input: RunReportInput): Block[] {
  const r = input.record;
  const i = r.intent;
  const script = i?.script.name ?? '?';
  const changed = Object.keys(r.changes).sort();
  return [
    title(`Run report: ${script} ${inlineCode(r.runId)}`),
    runCallout(r, runVerdict(r), input.verification),
    paragraph(`Written by safe-run at ${input.generatedAt} from the signed audit log ${inlineCode(input.logFile)}.`),
    heading('Summary'),
    list([
      `Status: **${r.status.status}**${r.status.note ? ` (${r.status.note})` : ''}.`,
      `Database: ${r.database ?? '?'}${i?.dryRun ? ' (dry run: always rolled back)' : ''}.`,
      ...(r.outcome?.trust ? [`Trust: ${trustLine(r.outcome.trust).replace(/^\s*trust: /, '')}.`] : []),
      ...(i
        ? [
            `Operator: ${i.operator.osUser}${i.operator.gitUser ? ` / ${i.operator.gitUser}` : ''} on ${i.host}${i.reason ? `; reason: ${i.reason}` : ''}.`,
          ]
        : []),
      ...(i
        ? [
            `Script: ${inlineCode(i.script.path)}, sha256 ${inlineCode(i.script.sha256)}${i.script.git ? `, git ${i.script.git.commit}${i.script.git.dirty ? ' (dirty)' : ''}` : ''}.`,
          ]
        : []),
    ]),
    heading('Verdict'),
    paragraph(runVerdict(r)),
    heading('Changes, measured inside the transaction'),
    changed.length
      ? table(
          ['table', 'inserted', 'updated', 'deleted', 'rows before', 'rows after'],
          changed.map((t) => changeRow(r, t)),
        )
      : paragraph('No table changed.'),
    ...(r.violations.length
      ? [heading('Guard violations'), list(r.violations.map((v) => `${inlineCode(violationSubject(v))} ${v.rule}: ${v.detail}`))]
      : []),
    ...(r.drift.length
      ? [
          heading('Drift found before the run'),
          list(r.drift.map((d) => `${d.kind}${d.table ? ` ${inlineCode(d.table)}` : ''}: ${d.detail}`)),
        ]
      : []),
    heading('Point-in-time bracket'),
    paragraph(
      `Pre-snapshot at WAL ${r.wal.preSnapshotLsn ?? '?'}; the transaction (xid ${r.wal.xid ?? '?'}) started at ${r.wal.startLsn ?? '?'}${r.wal.commitLsn ? ` and committed by ${r.wal.commitLsn}` : ''}. Recovery to just before ${r.wal.startLsn ?? 'the start LSN'} lands exactly before this run.`,
    ),
    ...evidenceBlocks(
      r.entries.map((e) => ({
        seq: e.seq,
        kind: e.kind,
        ts: e.ts,
        hash: e.hash,
        why:
          e.kind === 'run.outcome'
            ? 'the exact changes'
            : e.kind === 'run.intent'
              ? 'pre-snapshot, backup, operator'
              : e.kind === 'run.post'
                ? 'COMMIT and post-snapshot'
                : e.kind,
      })),
      input.verification,
      input.logFile,
    ),
    ...restoreBlocks(restoreFor(r), changed[0] ?? r.backup?.tables[0] ?? 'TABLE'),
  ];
}

/** "cleanup-invalid-sessions deleted 5 rows from oidc_models, and no rows in any other table." */
export function runVerdict(r: RunRecord): string {
  const script = r.intent?.script.name ?? '?';
  const parts = Object.entries(r.changes).map(([t, c]) => runEffect(script, c, shortName(t)).replace(`${script} `, ''));
  const effect = parts.length ? `${script} ${parts.join(', ')}` : `${script} changed no rows`;
  const critical = (r.intent?.script.critical ?? []).filter((t) => !r.changes[t]);
  const untouched = Object.keys(r.counts.pre).filter((t) => !r.changes[t]).length;
  const committedWord = r.status.committed ? 'committed' : `not committed (${r.status.status})`;
  return `${effect}, and 0 rows in the ${untouched} other table(s)${critical.length ? `, including ${critical.map(inlineCode).join(', ')}` : ''}. The transaction was ${committedWord}.`;
}

function changeRow(r: RunRecord, t: string): string[] {
  const c = r.changes[t]!;
  const after = r.counts.post?.[t] ?? r.counts.inTransaction[t];
  const estimate = r.counts.estimated.includes(t) ? ' (estimate)' : '';
  return [
    inlineCode(t),
    String(c.inserted),
    String(c.updated),
    `${c.deleted}${c.truncated ? ' (TRUNCATE)' : ''}`,
    `${r.counts.pre[t] ?? '-'}${estimate}`,
    after === undefined ? '-' : `${after}${estimate}`,
  ];
}

function restoreFor(r: RunRecord) {
  const b = r.backup;
  if (!b || b.status !== 'verified' || !b.path) return null;
  const t = Object.keys(r.changes).find((k) => b.scope === 'full' || b.tables.includes(k)) ?? b.tables[0];
  if (!t) return null;
  return {
    runId: r.runId,
    script: r.intent?.script.name ?? '?',
    ts: r.entries[0]?.ts ?? '?',
    path: b.path,
    sha256: b.sha256,
    rows: r.counts.pre[t] ?? null,
    command: `safe-run restore ${r.runId} --table ${t}`,
  };
}
