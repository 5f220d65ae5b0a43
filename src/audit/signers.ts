import { parseRecord } from '../records/index.js';
import { readRawEntries } from './read.js';

/**
 * The keys that may sign the next entry, read from the log's shape (verify checks the
 * signatures): entry 1's key, plus each key a key.add introduced, minus each key a
 * key.rotate retired. Only needed when this host's key did not sign the head, i.e. when a
 * second host (key.add) shares the log, so the whole-log read stays off the common path.
 */
export async function activeSigners(evidenceDir: string): Promise<ReadonlySet<string>> {
  const active = new Set<string>();
  for await (const entry of readRawEntries(evidenceDir, { keysOnly: true })) {
    if (entry.seq === 1) active.add(entry.keyId);
    // A key entry whose body does not parse introduces nothing (verify reports it as bad-body).
    const parsed = parseRecord(entry);
    if (!parsed.ok) continue;
    const record = parsed.record;
    if (record.kind === 'key.rotate') active.delete(record.keyId);
    if (record.kind === 'key.rotate' || record.kind === 'key.add') active.add(record.body.newKeyId);
  }
  return active;
}
