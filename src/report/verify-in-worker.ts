import type { Config } from '../config/config.js';
import { ownEntry } from '../own-build.js';
import type { VerificationOutcome } from './evidence.js';

/**
 * The report's signature check, started first and run beside the analysis. Ed25519
 * verification of every entry is the most expensive part of a report (about 0.1 ms per
 * entry, 3 s for a log of 10,000 runs), and both need the whole log, so they overlap
 * instead of adding up.
 */
export interface RunningVerification {
  readonly outcome: Promise<VerificationOutcome>;
  /** When the report fails for another reason: do not keep the process alive for a result nobody reads. */
  cancel(): void;
}

export function verifyInWorker(
  evidenceDir: string,
  databaseUrl: string | null,
  store: Pick<Config, 'evidenceStore' | 'databaseUrl'> = { evidenceStore: 'file', databaseUrl: null },
): RunningVerification {
  const workerData = { evidenceDir, databaseUrl, evidenceStore: store.evidenceStore, targetUrl: store.databaseUrl };
  // node:worker_threads on first use: loaded into the start-up snapshot (src/startup-snapshot.ts),
  // its record of the working directory is lost and a worker's process.cwd() throws.
  const { Worker } = process.getBuiltinModule('node:worker_threads');
  const worker = new Worker(ownEntry('report/verify-worker.js', 'verify-worker.js'), { workerData });
  const outcome = new Promise<VerificationOutcome>((resolve) => {
    let settled = false;
    const settle = (outcome: VerificationOutcome): void => {
      if (settled) return;
      settled = true;
      resolve(outcome);
    };
    worker.once('message', (message: VerificationOutcome) => settle(message));
    worker.once('error', (error) => settle({ result: null, error: error.message }));
    worker.once('exit', (code) => settle({ result: null, error: `the verification worker exited with code ${code}` }));
  });
  return { outcome, cancel: () => void worker.terminate() };
}
