import { readEntries } from '../audit/read.js';
import type { AuditEntry } from '../audit/types.js';

/** Anything that wants to see the log go by: run summaries, observations, one run's entries. */
export interface EntryVisitor {
  add(entry: AuditEntry): void;
}

export interface ScanResult {
  readonly entries: number;
  readonly lastSeq: number | null;
  readonly lastHash: string | null;
}

/**
 * One pass over audit.jsonl for every visitor at once: the log is the expensive thing to
 * read, so a command decides up front what it needs and reads the file exactly once.
 */
export async function scanLog(evidenceDir: string, visitors: readonly EntryVisitor[]): Promise<ScanResult> {
  let entries = 0;
  let last: AuditEntry | null = null;
  for await (const entry of readEntries(evidenceDir)) {
    entries++;
    last = entry;
    for (const v of visitors) v.add(entry);
  }
  return { entries, lastSeq: last?.seq ?? null, lastHash: last?.hash ?? null };
}
