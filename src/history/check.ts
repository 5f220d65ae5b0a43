import type { Config } from '../config/config.js';
import { readPendingWitnesses } from '../audit/witness-state.js';
import { usageError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { DriftFinding } from '../records/index.js';
import { warnSkipped } from '../audit/read.js';
import { driftAgainstHistory } from './before-run.js';
import { readLiveSnapshot } from './live.js';
import type { TargetDatabase, TargetHandle } from '../db/target.js';
import { databaseAnchor, openAuditLog } from '../audit/log.js';
import { ledgerTamperFindings, ledgerTriggerFindings } from '../ledger/findings.js';
import { sealQuietly } from '../ledger/seal.js';
import { ledgerInstalled } from '../ledger/state.js';
import type { DatabaseIdentity } from '../records/index.js';

/** `check --json` (SPEC "Machine-readable output"). */
export interface CheckResult {
  readonly status: 'clean' | 'drift';
  /** Drift, then `witness-failed` findings: those are reported but are not drift (status and exit code ignore them). */
  readonly findings: readonly (DriftFinding | WitnessFinding)[];
  readonly against: { readonly seq: number; readonly kind: string; readonly ts: string; readonly runId: string | null };
  readonly database: string;
  readonly checkedAt: string;
}

/**
 * The live database against its latest signed observation (a `snapshot`, a run's pre- or
 * post-snapshot, whichever is newest), plus the runs the log says never finished. It reads
 * the log the way a guarded run does (driftAgainstHistory): backwards, only as far as needed.
 */
export async function checkDatabase(config: Config, target: TargetHandle, log: Logger): Promise<CheckResult> {
  const live = await target.open();
  const now = await readLiveSnapshot(live, config);
  const key = now.database.key;
  const { previous, findings, entriesRead } = await driftAgainstHistory(config, now, live.db, warnSkipped(log));
  if (!previous) {
    throw usageError(
      `No signed observation of ${key} in ${config.evidenceDir} (${entriesRead} entries): nothing to compare with.`,
      'Record one with `safe-run snapshot` (cron it every few minutes), or run a script through safe-run.',
    );
  }
  log.debug('check compared', { against: previous.ref.seq, findings: findings.length });
  findings.push(...(await ledgerFindings(config, live, now.database, log)));
  return {
    status: findings.length ? 'drift' : 'clean',
    findings: [...findings, ...(await witnessFindings(config.evidenceDir))],
    against: { seq: previous.ref.seq, kind: previous.ref.kind, ts: previous.ref.ts, runId: previous.ref.runId },
    database: key,
    checkedAt: now.takenAt,
  };
}

/** A witness that missed heads: the log is not what failed, its off-site copy is behind. */
export interface WitnessFinding {
  readonly kind: 'witness-failed';
  readonly table?: undefined;
  readonly detail: string;
}

async function witnessFindings(evidenceDir: string): Promise<WitnessFinding[]> {
  return (await readPendingWitnesses(evidenceDir)).map((w) => ({
    kind: 'witness-failed',
    detail: `witness \`${w.command}\`${w.required ? ' (required)' : ''} has missed every head since entry ${w.since.seq} (${w.since.ts}), ${w.failures} attempt(s): ${w.lastError}`,
  }));
}

/** The change ledger: sealed first (check is one of the commands that seal), then compared with every seal. */
async function ledgerFindings(config: Config, live: TargetDatabase, identity: DatabaseIdentity, log: Logger): Promise<DriftFinding[]> {
  // Without a ledger there is nothing to seal, and no reason to need the signing key.
  if (await ledgerInstalled(live.db)) {
    try {
      const audit = await openAuditLog({
        evidenceDir: config.evidenceDir,
        signingKeyPath: config.signingKey,
        anchor: databaseAnchor(live.db),
        log,
      });
      await sealQuietly(live.db, audit, config.evidenceDir, identity, log);
    } catch (error) {
      log.warn('could not open the audit log to seal the change ledger', { error: (error as Error).message });
    }
  }
  return [
    ...(await ledgerTamperFindings(live.db, config.evidenceDir, identity, warnSkipped(log))),
    ...(await ledgerTriggerFindings(live.db, Object.keys(config.criticalTables))),
  ];
}
