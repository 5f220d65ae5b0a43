import type { AuditEntry, EntryKind } from '../audit/types.js';

/**
 * How evidence output names an audit entry. Reports and blame point at entries, never
 * copy them: the seq finds the line in audit.jsonl, the hash is what `verify` vouches for.
 */
export interface EntryRef {
  /** null for the live database ("now"), which is not in the log. */
  readonly seq: number | null;
  readonly kind: EntryKind | 'live';
  readonly ts: string;
  readonly runId: string | null;
  readonly hash: string | null;
}

/** A ref to an entry of the log (not the live database): it always has a seq and a hash. */
export interface LoggedRef extends EntryRef {
  readonly seq: number;
  readonly hash: string;
}

export function refOf(entry: AuditEntry): LoggedRef {
  return { seq: entry.seq, kind: entry.kind, ts: entry.ts, runId: entry.runId ?? null, hash: entry.hash };
}

export function liveRef(ts: string): EntryRef {
  return { seq: null, kind: 'live', ts, runId: null, hash: null };
}

/**
 * One line a person can paste into `safe-run show` or grep for:
 * `#12 run.post of cleanup-invalid-sessions 01JD… at 2025-11-14T00:23:05.120Z`.
 */
export function describeRef(ref: EntryRef, script?: string | null): string {
  if (ref.seq === null) return `now (live database, ${ref.ts})`;
  const owner = ref.runId ? ` of ${script ? `${script} ` : 'run '}${ref.runId}` : '';
  return `#${ref.seq} ${ref.kind}${owner} at ${ref.ts}`;
}

/** The short form for table cells: `#12 run.post` or `now`. */
export function shortRef(ref: EntryRef): string {
  return ref.seq === null ? 'now' : `#${ref.seq} ${ref.kind}`;
}
