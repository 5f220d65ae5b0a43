import { readRawEntries, recordOrSkip, type OnSkipped } from '../audit/read.js';
import type { AuditRecord } from '../records/index.js';

/** Anything that wants to see the log go by: run summaries, observations, one run's entries. */
export interface EntryVisitor {
  add(entry: AuditRecord): void;
}

export interface ScanResult {
  /** Every entry of the log, skipped ones included: the head is the log's head whatever its bodies say. */
  readonly entries: number;
  readonly lastSeq: number | null;
  readonly lastHash: string | null;
}

/**
 * One pass over audit.jsonl for every visitor at once: the log is the expensive thing to
 * read, so a command decides up front what it needs and reads the file exactly once. The
 * visitors see typed records only; an entry whose body does not parse goes to onSkipped.
 */
export async function scanLog(evidenceDir: string, visitors: readonly EntryVisitor[], onSkipped: OnSkipped): Promise<ScanResult> {
  let entries = 0;
  let last: { readonly seq: number; readonly hash: string } | null = null;
  for await (const entry of readRawEntries(evidenceDir)) {
    entries++;
    last = entry;
    const record = recordOrSkip(entry, onSkipped);
    if (record) for (const v of visitors) v.add(record);
  }
  return { entries, lastSeq: last?.seq ?? null, lastHash: last?.hash ?? null };
}
