import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { EVIDENCE_FILE_MODE } from './modes.js';
import type { WitnessedHead, WitnessOutcome } from './witness.js';
import { errorCode } from '../errors.js';

/** A witness that has not taken the heads since `since`: reported by `doctor` and `check`. */
export interface PendingWitness {
  readonly command: string;
  readonly required: boolean;
  /** The first head it missed. */
  readonly since: { readonly seq: number; readonly ts: string };
  readonly lastSeq: number;
  readonly lastError: string;
  readonly failures: number;
}

export const witnessStatePath = (evidenceDir: string): string => path.join(evidenceDir, 'witness-pending.json');

export async function readPendingWitnesses(evidenceDir: string): Promise<PendingWitness[]> {
  try {
    const value = JSON.parse(await readFile(witnessStatePath(evidenceDir), 'utf8')) as { pending?: PendingWitness[] };
    return Array.isArray(value.pending) ? value.pending : [];
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return [];
    throw error;
  }
}

/** After each append. Two appenders racing may each write it; the next append sets it right. The rename keeps readers off half a file. */
export async function recordWitnessResults(evidenceDir: string, head: WitnessedHead, outcomes: readonly WitnessOutcome[]): Promise<void> {
  const before = await readPendingWitnesses(evidenceDir);
  const pending = outcomes
    .filter((o) => !o.ok)
    .map((o): PendingWitness => {
      const earlier = before.find((p) => p.command === o.command);
      return {
        command: o.command,
        required: o.required,
        since: earlier?.since ?? { seq: head.seq, ts: head.ts },
        lastSeq: head.seq,
        lastError: o.error ?? 'failed',
        failures: (earlier?.failures ?? 0) + 1,
      };
    });
  if (!pending.length && !before.length) return;
  const file = witnessStatePath(evidenceDir);
  await writeFile(`${file}.tmp`, `${JSON.stringify({ pending }, null, 2)}\n`, { mode: EVIDENCE_FILE_MODE });
  await rename(`${file}.tmp`, file);
}
