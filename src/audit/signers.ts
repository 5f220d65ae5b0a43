import { readEntries } from './read.js';
import type { KeyAddBody, KeyRotateBody } from '../records/index.js';

/**
 * The keys that may sign the next entry, read from the log's shape (verify checks the
 * signatures): entry 1's key, plus each key a key.add introduced, minus each key a
 * key.rotate retired. Only needed when this host's key did not sign the head, i.e. when a
 * second host (key.add) shares the log, so the whole-log read stays off the common path.
 */
export async function activeSigners(evidenceDir: string): Promise<ReadonlySet<string>> {
  const active = new Set<string>();
  for await (const entry of readEntries(evidenceDir)) {
    if (entry.seq === 1) active.add(entry.keyId);
    const body = entry.body as Partial<KeyRotateBody & KeyAddBody> | null;
    if (entry.kind === 'key.rotate') active.delete(entry.keyId);
    if ((entry.kind === 'key.rotate' || entry.kind === 'key.add') && typeof body?.newKeyId === 'string') active.add(body.newKeyId);
  }
  return active;
}
