import { isOutside } from '../blame/attribute.js';
import { shortName, type Verdict } from '../blame/verdict.js';
import type { RunRecord } from '../history/run-record.js';
import { callout, type Block } from './blocks.js';
import type { VerificationOutcome } from './evidence.js';

/**
 * The first thing a reader sees: the verdict in a colour, a short title and one sentence.
 * A log that fails verification outranks any verdict, because every number rests on it.
 */
export function tableCallout(table: string, verdict: Verdict, verification: VerificationOutcome): Block {
  const broken = brokenEvidence(verification);
  if (broken) return broken;
  const sentence = verdict.sentences[0] ?? '';
  const d = verdict.decisive;
  const name = shortName(table);
  if (!d) return callout('ok', `${name} did not change.`, sentence);
  const lost = (d.after ?? 0) < (d.before ?? 0);
  if (isOutside(d.attribution)) {
    const where = d.attribution.type === 'concurrent' ? 'outside the run’s own transaction' : 'outside any guarded run';
    return callout('alarm', lost ? `${name} lost rows ${where}.` : `${name} changed ${where}.`, sentence);
  }
  return callout('notice', `${name} was changed by a guarded run.`, sentence);
}

export function runCallout(record: RunRecord, sentence: string, verification: VerificationOutcome): Block {
  const broken = brokenEvidence(verification);
  if (broken) return broken;
  const s = record.status.status;
  if (s === 'escaped') return callout('alarm', 'The script escaped the guard: its changes are committed.', sentence);
  if (record.intent?.dryRun) return callout('ok', 'Dry run: nothing was committed.', sentence);
  if (record.status.committed) return callout('ok', 'Committed.', sentence);
  return callout('notice', `Not committed (${s}).`, sentence);
}

function brokenEvidence(v: VerificationOutcome): Block | null {
  if (!v.result)
    return callout(
      'notice',
      'Signatures not checked.',
      `Verification could not run (${v.error ?? 'unknown error'}): run \`safe-run verify\` before relying on this report.`,
    );
  if (v.result.ok) return null;
  const bad = v.result.firstBad;
  const where = bad ? `Entry #${bad.seq} fails (${bad.reason}), so nothing from it on can be trusted` : 'Its signatures do not verify';
  return callout('alarm', 'The audit log does not verify.', `${where}: keep the evidence directory as it is and run \`safe-run verify\`.`);
}
