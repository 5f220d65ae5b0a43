import { parentPort, workerData } from 'node:worker_threads';
import { databaseAnchor } from '../audit/anchor.js';
import { useEvidenceStore } from '../audit/store-config.js';
import { verifyLog } from '../audit/verify.js';
import { createDb } from '../db/connection.js';
import { errorMessage } from '../errors.js';

/**
 * verifyLog in its own thread (see verify-in-worker.ts). The anchor needs a database
 * handle, and handles cannot cross threads, so the worker opens its own.
 */
const { evidenceDir, databaseUrl, evidenceStore, targetUrl } = workerData as {
  evidenceDir: string;
  databaseUrl: string | null;
  evidenceStore: string;
  targetUrl: string | null;
};
// A thread has its own module registry: the shared store, when configured, is set up here again.
useEvidenceStore({ evidenceDir, evidenceStore, databaseUrl: targetUrl });
const db = databaseUrl ? createDb(databaseUrl, { applicationName: 'safe-run verify', maxConnections: 1 }) : null;
try {
  // 'head': every hash and link, and the head's signature, which covers the whole chain (see verifyLog).
  parentPort!.postMessage({
    result: await verifyLog({ evidenceDir, anchor: db ? databaseAnchor(db) : null, signatures: 'head' }),
    error: null,
  });
} catch (error) {
  parentPort!.postMessage({ result: null, error: errorMessage(error) });
} finally {
  await db?.destroy();
}
