import { readFile } from 'node:fs/promises';
import { usageError, errorMessage } from '../errors.js';
import { readRawEntries } from './read.js';
import type { ChainHead, VerifyProblem } from './types.js';
import type { WitnessedHead } from './witness.js';

/**
 * `safe-run verify --witness FILE`: the log against heads a witness kept elsewhere. Every
 * witnessed head of this log must be the log's entry at that seq, and the log must reach
 * the highest one; so cutting both the log and the database anchor still shows. Heads of
 * other logs are ignored (a witness may serve several hosts) unless none is of this log.
 */
export async function checkWitnessFile(
  file: string,
  evidenceDir: string,
  logId: string | null,
  head: ChainHead | null,
): Promise<VerifyProblem | null> {
  const all = await readWitnessFile(file);
  const mine = all.filter((h) => h.logId === logId);
  const have = head?.seq ?? 0;
  const problem = (seq: number, detail: string): VerifyProblem => ({
    seq,
    line: Math.min(seq, have + 1),
    reason: 'witness-mismatch',
    detail,
  });
  if (!mine.length) {
    if (!all.length) return null;
    const ids = [...new Set(all.map((h) => h.logId.slice(0, 16)))].join(', ');
    return problem(
      1,
      `${file} witnessed log(s) ${ids}…, none of them this one (${logId ? `id ${logId.slice(0, 16)}…` : 'no log'}): the log was replaced or removed`,
    );
  }
  const highest = mine.reduce((a, b) => (b.seq > a.seq ? b : a));
  const wanted = new Map(mine.map((h) => [h.seq, h]));
  for await (const entry of readRawEntries(evidenceDir)) {
    const witnessed = wanted.get(entry.seq);
    if (witnessed && witnessed.hash !== entry.hash) {
      return problem(
        entry.seq,
        `${file} witnessed hash ${witnessed.hash.slice(0, 16)}… for entry ${entry.seq} (${witnessed.ts}), the log has ${entry.hash.slice(0, 16)}…: it was rewritten`,
      );
    }
  }
  if (highest.seq > have) {
    return problem(
      have + 1,
      `${file} witnessed entry ${highest.seq} (${highest.ts}), but the log ends at entry ${have}: entries ${have + 1}…${highest.seq} were cut (the database anchor too, if it did not catch it)`,
    );
  }
  return null;
}

async function readWitnessFile(file: string): Promise<WitnessedHead[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw usageError(`Cannot read the witness file ${file}: ${errorMessage(error)}`, 'Pass the file your witness command appends to.');
  }
  const heads: WitnessedHead[] = [];
  for (const [i, line] of text.split('\n').entries()) {
    if (!line.trim()) continue;
    let value: Partial<WitnessedHead>;
    try {
      value = JSON.parse(line) as Partial<WitnessedHead>;
    } catch {
      value = {};
    }
    if (typeof value.logId !== 'string' || typeof value.seq !== 'number' || typeof value.hash !== 'string') {
      throw usageError(
        `${file} line ${i + 1} is not a witnessed head ({ logId, seq, hash, keyId, sig, ts }).`,
        'Give verify the file the witness wrote, unchanged.',
      );
    }
    heads.push(value as WitnessedHead);
  }
  return heads;
}
