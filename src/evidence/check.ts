import type { Config } from '../config/config.js';
import { usageError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { DriftFinding } from '../run/types.js';
import { driftAgainstHistory } from './before-run.js';
import { connectLive, readLiveSnapshot } from './live.js';

/** `check --json` (SPEC "Machine-readable output"). */
export interface CheckResult {
  readonly status: 'clean' | 'drift';
  readonly findings: readonly DriftFinding[];
  readonly against: { readonly seq: number; readonly kind: string; readonly ts: string; readonly runId: string | null };
  readonly database: string;
  readonly checkedAt: string;
}

/**
 * The live database against its latest signed observation (a `snapshot`, a run's pre- or
 * post-snapshot, whichever is newest), plus the runs the log says never finished. It reads
 * the log the way a guarded run does (driftAgainstHistory): backwards, only as far as needed.
 */
export async function checkDatabase(config: Config, log: Logger): Promise<CheckResult> {
  const live = await connectLive(config);
  try {
    const now = await readLiveSnapshot(live, config);
    const key = now.database.key;
    const { previous, findings, entriesRead } = await driftAgainstHistory(config, now, live.db);
    if (!previous) {
      throw usageError(
        `No signed observation of ${key} in ${config.evidenceDir} (${entriesRead} entries): nothing to compare with.`,
        'Record one with `safe-run snapshot` (cron it every few minutes), or run a script through safe-run.',
      );
    }
    log.debug('check compared', { against: previous.ref.seq, findings: findings.length });
    return {
      status: findings.length ? 'drift' : 'clean',
      findings,
      against: { seq: previous.ref.seq!, kind: previous.ref.kind, ts: previous.ref.ts, runId: previous.ref.runId },
      database: key,
      checkedAt: now.takenAt,
    };
  } finally {
    await live.close();
  }
}
