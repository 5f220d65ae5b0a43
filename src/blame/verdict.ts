import type { TableChange, TableKey } from '../records/index.js';
import { isOutside, type BlameChange } from './attribute.js';
import type { BlameAnalysis } from './blame.js';
import { describeEvent } from './window-events.js';
import { describeSession, ledgerOffLines, sessionDetails } from './sessions.js';
import { groupStatements, leadingStatement } from './session-groups.js';
import type { RunFacts } from './windows.js';

/**
 * The report's answer in one or two sentences, built only from signed numbers:
 * "cleanup-invalid-sessions deleted 0 rows from users; users went from 8 to 0 outside any
 * guarded run between … and …". The decisive change is the latest loss of rows (the thing a
 * post-mortem is about), or else the latest change.
 */
export interface Verdict {
  readonly sentences: readonly string[];
  readonly decisive: BlameChange | null;
  /** The guarded run a reader would suspect: the last one to commit before the change. */
  readonly suspect: RunFacts | null;
}

export function decideVerdict(analysis: Pick<BlameAnalysis, 'table' | 'changes' | 'runs' | 'observations'>): Verdict {
  const name = shortName(analysis.table);
  const decisive =
    [...analysis.changes].reverse().find((c) => (c.after ?? 0) < (c.before ?? 0)) ?? analysis.changes[analysis.changes.length - 1] ?? null;
  if (!decisive) {
    const obs = analysis.observations;
    const first = obs[0];
    const last = obs[obs.length - 1];
    return {
      sentences: [
        `${name} did not change in the ${obs.length} signed observations from ${first?.ts ?? '?'} to ${last?.ts ?? '?'} (${last?.rows ?? '-'} rows).`,
      ],
      decisive: null,
      suspect: null,
    };
  }
  const went = `${name} went from ${rows(decisive.before)} to ${rows(decisive.after)}`;
  if (decisive.attribution.type === 'run') {
    const { runId, script } = decisive.attribution;
    const escaped = decisive.escaped
      ? ' It ESCAPED the guard: the script committed by itself, and these numbers come from the statistics afterwards.'
      : '';
    return {
      sentences: [
        `${runEffect(script, decisive.change ?? null, name)} in its own transaction (run ${runId}, signed outcome); ${went}.${escaped}`,
      ],
      decisive,
      suspect: analysis.runs.find((r) => r.run.runId === runId) ?? null,
    };
  }
  const suspect = lastCommittedBefore(analysis.runs, decisive.toSeq);
  const suspectPart = suspect
    ? `${runEffect(suspect.run.intent?.script ?? '?', suspect.run.outcome?.changes[analysis.table] ?? null, name)}; `
    : '';
  const off = decisive.ledgerOff?.[0];
  if (off) {
    // The ledger could not see the whole window: nobody it names is taken for the cause, and nobody is cleared.
    const named =
      decisive.attribution.type === 'session'
        ? [
            `In that window the ledger names ${decisive.attribution.statements.length} statement(s), not necessarily all: ${decisive.attribution.statements.slice(0, 3).map(describeSession).join('; ')}.`,
          ]
        : [];
    return {
      sentences: [
        `${suspectPart}${went} between ${decisive.attribution.after} and ${decisive.attribution.before}, while ${ledgerOffLines(analysis.table, off).join('; ')}.`,
        ...named,
      ],
      decisive,
      suspect,
    };
  }
  if (decisive.attribution.type === 'session') {
    const all = decisive.attribution.statements;
    const first = leadingStatement(all, (decisive.after ?? 0) < (decisive.before ?? 0));
    const sessions = groupStatements(all).length;
    const more =
      all.length > 1
        ? ` (and ${all.length - 1} more statement(s)${sessions > 1 ? `, ${sessions} groups by session and operation in all` : ''})`
        : '';
    return {
      sentences: [
        `${suspectPart}${went} between ${decisive.attribution.after} and ${decisive.attribution.before}: the change ledger names ${describeSession(first)}${more}.`,
        `Statement: ${sessionDetails(first).join('; ')}.`,
      ],
      decisive,
      suspect,
    };
  }
  const where =
    decisive.attribution.type === 'concurrent'
      ? `outside the transaction of run ${decisive.attribution.runId} (${decisive.attribution.script}): another session wrote while it ran, between`
      : 'outside any guarded run between';
  const sentences = [`${suspectPart}${went} ${where} ${decisive.attribution.after} and ${decisive.attribution.before}.`];
  const events = decisive.events.filter((e) => e !== 'stats-reset');
  if (events.length) sentences.push(`In that window ${events.map(describeEvent).join(', and ')}.`);
  if (decisive.counters && decisive.counters.deleted > 0) {
    sentences.push(
      `The table's delete counter moved by ${decisive.counters.deleted} in that window: rows were deleted by a session that was not a guarded run.`,
    );
  } else if (decisive.counters === null) {
    sentences.push('The statistics counters cannot be compared across that window, so they say nothing about how the rows went.');
  }
  const earlier = analysis.changes.filter((c) => c !== decisive && isOutside(c.attribution) && (c.after ?? 0) < (c.before ?? 0));
  if (earlier.length) {
    const largest = earlier.reduce((x, y) => ((y.before ?? 0) - (y.after ?? 0) > (x.before ?? 0) - (x.after ?? 0) ? y : x));
    const where = isOutside(largest.attribution) ? ` between ${largest.attribution.after} and ${largest.attribution.before}` : '';
    sentences.push(
      `${name} also lost rows outside guarded runs ${earlier.length} other time(s); the largest: ${rows(largest.before)} to ${rows(largest.after)}${where}.`,
    );
  }
  return { sentences, decisive, suspect };
}

/** "cleanup-invalid-sessions deleted 0 rows from users" — zero is stated, not omitted. */
export function runEffect(script: string, change: TableChange | null, table: string): string {
  if (!change || (!change.inserted && !change.updated && !change.truncated))
    return `${script} deleted ${change?.deleted ?? 0} rows from ${table}`;
  if (change.truncated) return `${script} truncated ${table}`;
  return `${script} inserted ${change.inserted}, updated ${change.updated} and deleted ${change.deleted} rows in ${table}`;
}

function lastCommittedBefore(runs: readonly RunFacts[], seq: number | null): RunFacts | null {
  const limit = seq ?? Number.POSITIVE_INFINITY;
  let found: { readonly facts: RunFacts; readonly at: number } | null = null;
  for (const r of runs) {
    const at = r.run.outcome?.ref.seq;
    if (r.status.committed && at !== undefined && at < limit && (!found || at > found.at)) found = { facts: r, at };
  }
  return found?.facts ?? null;
}

export function shortName(table: TableKey): string {
  return table.startsWith('public.') ? table.slice('public.'.length) : table;
}

function rows(n: number | null): string {
  return n === null ? 'not existing' : String(n);
}
