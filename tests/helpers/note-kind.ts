import type { EntryKind } from '../../src/audit/types.js';

/**
 * A kind this safe-run does not read. The chain tests append free-form bodies under it: verify
 * checks its hash, signature and place like any entry's (a newer safe-run's kinds must keep
 * verifying), while a known kind's body must parse, which is not what those tests are about.
 */
export const NOTE_KIND = 'test.note' as EntryKind;
