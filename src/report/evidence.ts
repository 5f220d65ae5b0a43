import type { VerifyResult } from '../audit/types.js';
import { code, heading, inlineCode, paragraph, table, type Block } from './blocks.js';
import type { RestoreSource } from '../blame/restore-source.js';

/**
 * The sections every report ends with: which entries the statements rest on, whether the
 * log verifies, and how to get the data back. A verdict is only as good as this part.
 */
export interface CitedEntry {
  readonly seq: number;
  readonly kind: string;
  readonly ts: string;
  readonly hash: string;
  readonly why: string;
}

/** Null when verification could not run at all (message in `verifyError`). */
export interface VerificationOutcome {
  readonly result: VerifyResult | null;
  readonly error: string | null;
}

export function evidenceBlocks(cited: readonly CitedEntry[], verification: VerificationOutcome, logFile: string): Block[] {
  const unique = [...new Map(cited.map((c) => [c.seq, c])).values()].sort((a, b) => a.seq - b.seq);
  return [
    heading('Evidence'),
    paragraph(`Every number above comes from signed entries of ${inlineCode(logFile)}. The entries this report rests on:`),
    unique.length
      ? table(
          ['seq', 'kind', 'time', 'sha256 (entry hash)', 'cited for'],
          unique.map((c) => [`#${c.seq}`, c.kind, c.ts, inlineCode(c.hash), c.why]),
        )
      : paragraph('(no entries cited)'),
    paragraph(verificationText(verification, unique)),
  ];
}

export function verificationText(v: VerificationOutcome, cited: readonly CitedEntry[] = []): string {
  if (!v.result)
    return `**Signature verification could not run:** ${v.error ?? 'unknown error'}. Run ${inlineCode('safe-run verify')} before relying on this report.`;
  const r = v.result;
  if (!r.ok && r.firstBad) {
    const tainted = cited.filter((c) => c.seq >= r.firstBad!.seq).map((c) => `#${c.seq}`);
    return `**Signature verification FAILED** at entry #${r.firstBad.seq} (line ${r.firstBad.line}, ${r.firstBad.reason}): ${r.firstBad.detail}. ${r.entries} entries verified before it.${tainted.length ? ` Cited entries that cannot be trusted: ${tainted.join(', ')}.` : ''}`;
  }
  const head = r.head ? ` Head: #${r.head.seq} ${inlineCode(r.head.hash)}.` : '';
  const anchor = r.anchor
    ? ` The chain head anchored in the database is #${r.anchor.seq}.`
    : ' No chain head was anchored in the database to compare with.';
  const keys = r.keys.length ? ` Signed by key${r.keys.length > 1 ? 's' : ''} ${r.keys.map(inlineCode).join(', ')} (Ed25519).` : '';
  const warnings = r.warnings.length ? ` Warnings: ${r.warnings.join('; ')}.` : '';
  return `**Hash chain and head signature verified:** all ${r.entries} entries are linked, and the head's Ed25519 signature covers every one of them through the chain (${inlineCode('safe-run verify')} also checks each entry's own signature).${head}${keys}${anchor}${warnings}`;
}

export function restoreBlocks(source: RestoreSource | null, tableName: string): Block[] {
  if (!source) {
    return [
      heading('Restore'),
      paragraph(
        `No verified backup holds ${inlineCode(tableName)}. Guarded runs back up the tables they declare (and their cascade closure); set ${inlineCode('"backup": { "scope": "full" }')} to back up everything.`,
      ),
    ];
  }
  return [
    heading('Restore'),
    paragraph(
      `Restore from the backup of run ${inlineCode(source.runId)} (${source.script}, ${source.ts}): ${inlineCode(source.path)}${source.sha256 ? `, sha256 ${inlineCode(source.sha256)}` : ''}, verified with ${inlineCode('pg_restore --list')} when it was taken.${source.rows !== null ? ` It holds ${source.rows} rows of ${inlineCode(tableName)} (the run's exact pre-count).` : ''} By default the restore goes into a new scratch database, so it can be inspected before anything is copied back:`,
    ),
    code(source.command),
  ];
}
