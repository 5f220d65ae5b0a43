import type { AuditLog } from '../../src/audit/log.js';
import type { AuditEntry, EntryKind } from '../../src/audit/types.js';
import type { RecordBody } from '../../src/records/index.js';

/**
 * A kind this safe-run does not read. The chain tests append free-form bodies under it: verify
 * checks its hash, signature and place like any entry's (a newer safe-run's kinds must keep
 * verifying), while a known kind's body must parse, which is not what those tests are about.
 */
export const NOTE_KIND = 'test.note' as EntryKind;

/** The typed door takes a known kind's record type; a free-form note body is cast here, once. */
export function appendNote(audit: AuditLog, body: unknown, options?: { runId?: string }): Promise<AuditEntry> {
  return audit.append(NOTE_KIND, body as RecordBody<EntryKind>, options);
}
