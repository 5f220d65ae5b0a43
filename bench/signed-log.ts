import { open } from 'node:fs/promises';
import { readHead } from '../src/audit/append.js';
import { signEntry } from '../src/audit/entry.js';
import { loadSigningKey } from '../src/audit/keys.js';
import { openAuditLog } from '../src/audit/log.js';
import { auditLogPath } from '../src/audit/read.js';
import { GENESIS_PREV, type EntryKind } from '../src/audit/types.js';
import type { RecordBody } from '../src/records/index.js';
import type { SyntheticEntry } from './history.js';

/**
 * Writing a long audit log. appendSignedEntry takes a file lock and fsyncs every entry,
 * which is right for a run (a handful of entries) and hours for 100,000; so the bulk goes
 * through the module's own signing function (signEntry: canonical JSON, sha256, Ed25519,
 * the exact line format) in batches, chained from whatever the log's head is. The last
 * entries go through the real append API, which also times it.
 */
export async function writeSignedBulk(
  evidenceDir: string,
  signingKeyPath: string,
  runs: number,
  next: () => SyntheticEntry[],
): Promise<number> {
  const file = auditLogPath(evidenceDir);
  const key = await loadSigningKey({ signingKeyPath, evidenceDir });
  let { head } = await readHead(file);
  let seq = head?.seq ?? 0;
  let prev = head?.hash ?? GENESIS_PREV;
  const handle = await open(file, 'a', 0o644);
  try {
    let batch: string[] = [];
    for (let r = 0; r < runs; r++) {
      for (const e of next()) {
        const { entry, line } = signEntry({ seq: ++seq, prev, kind: e.kind, body: e.body, runId: e.runId, ts: e.ts }, key);
        prev = entry.hash;
        batch.push(line);
      }
      if (batch.length >= 3000) {
        await handle.write(`${batch.join('\n')}\n`);
        batch = [];
      }
    }
    if (batch.length) await handle.write(`${batch.join('\n')}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  head = (await readHead(file)).head;
  return head?.seq ?? 0;
}

/** Appends through openAuditLog().append, one fsync'ed entry at a time; returns entries per second. */
export async function appendThroughApi(
  evidenceDir: string,
  signingKeyPath: string,
  runs: number,
  next: () => SyntheticEntry[],
): Promise<number> {
  const audit = await openAuditLog({ evidenceDir, signingKeyPath });
  let count = 0;
  const started = performance.now();
  for (let r = 0; r < runs; r++) {
    for (const e of next()) {
      // Bodies copied from a real run's entries: the typed door cannot see that, so the cast is here.
      await audit.append(e.kind, e.body as RecordBody<EntryKind>, { runId: e.runId });
      count++;
    }
  }
  return count / ((performance.now() - started) / 1000);
}
