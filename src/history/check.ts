import type { Config } from '../config/config.js';
import { readPendingWitnesses } from '../audit/witness-state.js';
import { usageError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { DatabaseIdentity, DriftFinding, Snapshot, TableKey } from '../records/index.js';
import { warnSkipped } from '../audit/read.js';
import type { Db } from '../db/connection.js';
import type { TargetDatabase, TargetHandle } from '../db/target.js';
import { databaseAnchor, openAuditLog } from '../audit/log.js';
import { errorMessage } from '../errors.js';
import { checkLedgerSeals, ledgerTriggerFindings, type SealRecord } from '../ledger/findings.js';
import { sealQuietly } from '../ledger/seal.js';
import { ledgerInstalled } from '../ledger/state.js';
import { liveRef } from './entry-ref.js';
import { packageVersion } from '../version.js';
import { checkpointScope, loadIntactSeals, saveIntactSeals, type CheckpointScope } from './checkpoint.js';
import { criticalTablesOf, type CriticalTables } from './critical-tables.js';
import { readLiveSnapshot } from './live.js';
import { findingId, scanFindings, type FindingsScan, type OpenFinding } from './open-findings.js';

/** `check --json` (SPEC "Machine-readable output"). */
export interface CheckResult {
  /** `drift` while any finding is open (not acknowledged), whenever it was first seen. */
  readonly status: 'clean' | 'drift';
  /** Open findings, oldest first, then `witness-failed` ones: reported, but not drift (status and exit code ignore them). */
  readonly findings: readonly (OpenFinding | WitnessFinding)[];
  /** How many findings of this database were acknowledged with `safe-run ack`. */
  readonly acknowledged: number;
  /** The newest signed observation of the database. */
  readonly against: { readonly seq: number; readonly kind: string; readonly ts: string; readonly runId: string | null };
  readonly database: string;
  readonly checkedAt: string;
  /** Every critical table (config and scripts' `critical`), with its live row count (null: the table is gone). */
  readonly critical: Readonly<Record<TableKey, { readonly rows: number | null; readonly declaredBy: readonly string[] }>>;
}

/**
 * The live database against every signed observation of it: findings stay open until an
 * operator acknowledges them (`safe-run ack`), so a later snapshot or run never silences an
 * alert. Critical tables come from the config and from every script's `critical`.
 */
export async function checkDatabase(config: Config, target: TargetHandle, log: Logger): Promise<CheckResult> {
  const { critical, now, scan, checkpoint } = await readFindings(config, target, log);
  const key = now.database.key;
  if (!scan.newest && !scan.open.length) {
    throw usageError(
      `No signed observation of ${key} in ${config.evidenceDir} (${scan.entriesRead} entries): nothing to compare with.`,
      'Record one with `safe-run snapshot` (cron it every few minutes), or run a script through safe-run.',
    );
  }
  log.debug('check compared', { entries: scan.entriesRead, open: scan.open.length, acknowledged: scan.acked.size });
  const ref = scan.newest?.ref;
  // The ledger's findings are about the live database now (a tampered seal, a disabled trigger):
  // open while the live state shows them, unless acknowledged like any other finding.
  const ledger = (await ledgerFindings(config, await target.open(), now.database, { seals: scan.seals, checkpoint }, log))
    .map((finding) => ({ ...finding, id: findingId(key, finding, null), firstSeen: liveRef(now.takenAt), since: null }))
    .filter((finding) => !scan.acked.has(finding.id));
  const open = [...scan.open, ...ledger];
  return {
    status: open.length ? 'drift' : 'clean',
    findings: [...open, ...(await witnessFindings(config.evidenceDir))],
    acknowledged: scan.acked.size,
    against: { seq: ref?.seq ?? 0, kind: ref?.kind ?? 'none', ts: ref?.ts ?? now.takenAt, runId: ref?.runId ?? null },
    database: key,
    checkedAt: now.takenAt,
    critical: Object.fromEntries(
      Object.keys(critical.rules)
        .sort()
        .map((table) => [table, { rows: now.tables[table]?.rows ?? null, declaredBy: critical.declaredBy[table] ?? [] }]),
    ),
  };
}

/** What `check` and `ack` both read: the critical tables, the live database, and every finding the log shows. */
export async function readFindings(
  config: Config,
  target: TargetHandle,
  log: Logger,
): Promise<{
  readonly critical: CriticalTables;
  readonly now: Snapshot;
  readonly scan: FindingsScan;
  readonly checkpoint: CheckpointScope | null;
}> {
  const critical = await criticalTablesOf(config, log);
  const checked = { ...config, criticalTables: critical.rules };
  const live = await target.open();
  const now = await readLiveSnapshot(live, checked);
  const checkpoint = await checkpointScope(checked, now.database.key, packageVersion(), log);
  const scan = await scanFindings(checked, now, live.db, { onSkipped: warnSkipped(log), checkpoint, log });
  return { critical, now, scan, checkpoint };
}

/** Sealed rows gone or changed; the seals found intact are remembered, so the next check compares only what changed since. */
async function ledgerTamperFindings(
  db: Db,
  evidenceDir: string,
  identity: DatabaseIdentity,
  seals: readonly SealRecord[],
  checkpoint: CheckpointScope | null,
  log: Logger,
): Promise<DriftFinding[]> {
  const known = await loadIntactSeals(checkpoint, log);
  const { tampering, intact } = await checkLedgerSeals(db, evidenceDir, identity, seals, known);
  const skipped = [...known].filter(([seq, stamp]) => intact.get(seq) === stamp).length;
  log.debug('ledger seals checked', { intact: intact.size, notComparedAgain: skipped, problems: tampering.length });
  if (intact.size || known.size) await saveIntactSeals(checkpoint, intact, log);
  return tampering.map((t) => ({ kind: 'ledger-tampered', detail: t.detail }));
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
async function ledgerFindings(
  config: Config,
  live: TargetDatabase,
  identity: DatabaseIdentity,
  from: { readonly seals: readonly SealRecord[]; readonly checkpoint: CheckpointScope | null },
  log: Logger,
): Promise<DriftFinding[]> {
  const seals = [...from.seals];
  // Without a ledger there is nothing to seal, and no reason to need the signing key.
  if (await ledgerInstalled(live.db)) {
    try {
      const audit = await openAuditLog({
        evidenceDir: config.evidenceDir,
        signingKeyPath: config.signingKey,
        anchor: databaseAnchor(live.db),
        log,
      });
      const sealed = await sealQuietly(live.db, audit, config.evidenceDir, identity, log);
      if (sealed) seals.push(sealed.seal);
    } catch (error) {
      log.warn('could not open the audit log to seal the change ledger', { error: errorMessage(error) });
    }
  }
  return [
    ...(await ledgerTamperFindings(live.db, config.evidenceDir, identity, seals, from.checkpoint, log)),
    ...(await ledgerTriggerFindings(live.db, Object.keys(config.criticalTables))),
  ];
}
