import { criticalTableKeys, watchedTableKeys } from '../guard/watched.js';
import { sql, type ControlledTransaction } from 'kysely';
import type { AuditLog } from '../audit/log.js';
import type { Config } from '../config/config.js';
import { type Db, onlyRow } from '../db/connection.js';
import { readConcurrentWrites, type ConcurrentWrites } from '../guard/concurrent.js';
import { readOwnRows, uncountedChanges } from '../guard/own-rows.js';
import { catalogViolations } from '../guard/catalog-rules.js';
import { withStorageNow, type PreparedBaseline } from '../guard/baseline.js';
import { readCatalogStateAt, readCatalogWritesHere, type CatalogWrites } from '../guard/catalog-changes.js';
import { readCatalogVerdict } from '../guard/catalog-verdict.js';
import { addChanges, evaluateGuards } from '../guard/rules.js';
import { evidenceSchemaViolations, readEvidenceSchema, type EvidenceSchemaState } from '../guard/evidence-schema.js';
import {
  measureChanges,
  readOwnLocks,
  readSequencePositions,
  readXactCounters,
  sequencesDrawnHere,
  sequenceResets,
  foreignWriteViolations,
  type XactState,
} from '../guard/measure.js';
import {
  applyRunnerSettings,
  readGuardedSettings,
  readTrust,
  restoreSearchPath,
  settingViolations,
  useCatalogSearchPath,
  type SettingValues,
} from '../guard/settings.js';
import { declaredParents, readTableShapes } from '../guard/shapes.js';
import type { Logger } from '../logger.js';
import type { LoadedScript } from '../script/load.js';
import { ledgerAllowance, ledgerCrossCheck, readOwnLedger, readProtectedKeys } from '../ledger/own.js';
import type {
  LedgerCrossCheck,
  DriftFinding,
  OutcomeStatus,
  RunOutcomeBody,
  Snapshot,
  TableChange,
  TableKey,
  Violation,
} from '../records/index.js';
import type { Interrupt } from './interrupt.js';
import { recordEscape } from './escape.js';
import { toRunError } from './run-error.js';
import { runThroughGate } from './script-gate.js';

/**
 * Steps 7 to 10 of the pipeline: the script's transaction, measured from inside, judged by
 * the guards, and an outcome entry that is durable before COMMIT or ROLLBACK is issued.
 * The script's transaction runs on its own session (`scriptDb`, the scriptRole's login
 * when configured); the runner's pool (`db`) never hosts script work, so nothing a script
 * leaves in its session (temporary objects, settings) reaches the runner's other readings.
 */
export interface TransactionInput {
  readonly db: Db;
  readonly scriptDb: Db;
  /** The run's own session (holds the lock); used to cancel the script's query on a signal. */
  readonly session: Db;
  readonly config: Config;
  readonly script: LoadedScript;
  readonly args: readonly string[];
  readonly dryRun: boolean;
  readonly runId: string;
  readonly pre: Snapshot;
  readonly drift: readonly DriftFinding[];
  readonly cascadeFrom: Readonly<Record<TableKey, TableKey>>;
  /**
   * The declared tables' cascade closure and the critical tables: counted exactly inside the
   * transaction, and those counts are the post-snapshot's (nothing is counted twice).
   */
  readonly exactTables: ReadonlySet<TableKey>;
  /** The catalog and table shapes before the script, read on its session during the backup. */
  readonly prepared: PreparedBaseline;
  readonly audit: AuditLog;
  readonly interrupt: Interrupt;
  readonly log: Logger;
}

export interface TransactionResult {
  readonly outcome: RunOutcomeBody;
  readonly scriptOutput: unknown;
  /** What the script's statements reported changing (ScriptRun.rowsAffected). */
  readonly rowsAffected: number;
  /** Still open: the caller commits it (status `committing`) or rolls it back; null after an escape. */
  readonly trx: ControlledTransaction<any> | null; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** After an escape: what the script left, read once its session had flushed its counters. */
  readonly post: Snapshot | null;
}

interface Baseline {
  readonly xact: XactState;
  /**
   * The snapshot the transaction began with, exported: the catalog as it found it, read on
   * another connection only if the transaction wrote the catalogs (catalog-verdict.ts).
   */
  readonly snapshotAtBegin: string;
  readonly catalogWrites: CatalogWrites;
  readonly evidence: EvidenceSchemaState;
  readonly settings: SettingValues;
}

interface Measured {
  readonly changes: Record<TableKey, TableChange>;
  readonly inTxCounts: Record<TableKey, number>;
  readonly violations: Violation[];
  readonly sequencesUsed: string[];
  readonly concurrent: ConcurrentWrites;
  readonly ledger: LedgerCrossCheck | null;
}

export async function runScriptTransaction(input: TransactionInput): Promise<TransactionResult> {
  const { config, script, log } = input;
  const timings: Record<string, number> = {};
  const trx = await input.scriptDb.startTransaction().execute();
  // The insert position, not the write position: the write position lags behind commits
  // that are not flushed yet, and point-in-time recovery needs where this run really starts.
  const { rows } = await sql<{ pid: number; xid: string; lsn: string; snapshot: string }>`
    select pg_catalog.pg_backend_pid() as pid, pg_catalog.txid_current()::text as xid,
           pg_catalog.pg_current_wal_insert_lsn()::text as lsn, pg_catalog.pg_export_snapshot() as snapshot`.execute(trx);
  const { pid, xid, lsn, snapshot } = onlyRow(rows);
  await applyRunnerSettings(trx, {
    applicationName: `safe-run:${script.name}:${input.runId}`,
    statementTimeoutMs: config.statementTimeoutMs,
    lockTimeoutMs: config.lockTimeoutMs,
  });
  input.interrupt.onInterrupt(() => {
    void sql`select pg_catalog.pg_cancel_backend(${pid})`.execute(input.session).catch(() => {});
  });

  let t = Date.now();
  const scriptSearchPath = await useCatalogSearchPath(trx);
  const trust = await readTrust(trx);
  // The counters and the relfilenodes are read inside the transaction (SPEC step 7 and
  // "Facts"); the fingerprints were read on this session before it began (guard/baseline.ts),
  // and the catalog as this transaction finds it is read afterwards, in the snapshot exported
  // above, only if the script wrote the catalogs.
  const baseline: Baseline = {
    xact: {
      counters: await readXactCounters(trx),
      shapes: await withStorageNow(trx, input.prepared.shapes),
      sequences: await readSequencePositions(trx),
    },
    snapshotAtBegin: snapshot,
    // The catalog search path is in force from useCatalogSearchPath above: no savepoint of its own.
    catalogWrites: await readCatalogWritesHere(trx),
    evidence: await readEvidenceSchema(trx),
    settings: await readGuardedSettings(trx),
  };
  await restoreSearchPath(trx, scriptSearchPath);
  timings.baseline = Date.now() - t;

  t = Date.now();
  const ran = await runThroughGate(script, trx, { args: input.args, log, dryRun: input.dryRun, interrupt: input.interrupt, trust });
  timings.script = Date.now() - t;

  if (await escapedTransaction(trx, xid)) {
    await trx
      .rollback()
      .execute()
      .catch(() => {});
    const { outcome, post } = await recordEscape({ ...input, xid, lsn, trust, timings, error: ran.error });
    return { outcome, scriptOutput: ran.output, rowsAffected: ran.rowsAffected, trx: null, post };
  }

  let error = ran.error;
  let measured: Measured | null = null;
  if (!error && !input.interrupt.signal) {
    t = Date.now();
    try {
      measured = await measure(input, trx, baseline, trust);
    } catch (e) {
      // A run that cannot be measured cannot be judged, so it is not committed (e.g. the connection died).
      error = e;
    }
    timings.measure = Date.now() - t;
  }

  const violations = [...ran.refusals, ...(measured?.violations ?? [])];
  const outcome: RunOutcomeBody = {
    status: decideStatus(input, error, violations),
    changes: measured?.changes ?? {},
    inTxCounts: measured?.inTxCounts ?? {},
    violations,
    error: error ? toRunError(error, script) : input.interrupt.signal ? { message: `interrupted by ${input.interrupt.signal}` } : null,
    timingsMs: timings,
    xid,
    walLsnStart: lsn,
    sequencesUsed: measured?.sequencesUsed ?? [],
    drift: input.drift,
    trust,
    ...(measured ? { concurrentWrites: measured.concurrent } : {}),
    ...(measured?.ledger ? { ledger: measured.ledger } : {}),
  };
  try {
    // Durable before the transaction ends: if this throws, nothing is committed.
    await input.audit.append('run.outcome', outcome, { runId: input.runId });
  } catch (appendError) {
    await trx
      .rollback()
      .execute()
      .catch(() => {});
    throw appendError;
  }
  return { outcome, scriptOutput: ran.output, rowsAffected: ran.rowsAffected, trx, post: null };
}

/**
 * Everything the guards judge, read inside the script's transaction. The settings are read
 * first, as the script left them; then the runner's own search path goes in, so no object
 * the script created can stand in for a catalog while the runner measures.
 */
async function measure(input: TransactionInput, trx: Db, baseline: Baseline, trust: 'role' | 'superuser'): Promise<Measured> {
  const { config, script } = input;
  const settingsAfter = await readGuardedSettings(trx);
  await useCatalogSearchPath(trx);
  // Deferred constraint triggers would otherwise fire at COMMIT, after every measurement:
  // whatever they do must happen now, where it is counted and judged.
  await sql`set constraints all immediate`.execute(trx);
  const ownLocks = await readOwnLocks(trx);
  const ownStrongLocks = ownLocks.strong;
  const current = await readXactState(trx, ownStrongLocks);
  const measured = measureChanges(baseline.xact, current, ownStrongLocks);
  const watched = guardedTables(input, current);
  const changes = withLeavesSummed(measured.changes, current);
  // Critical tables always: their drop must be the run's own, whatever other sessions do meanwhile.
  // Under a superuser, declared tables too: their counters could have been switched off.
  // The watched tables' counts inside are read once, as the first bracket's inside reading.
  const critical = criticalTableKeys(script, config);
  const declaredOrCritical = watchedTableKeys(script, config);
  const own = await readOwnRows(
    input.db,
    trx,
    watched.filter((t) => critical.has(t.key) || (trust === 'superuser' && declaredOrCritical.has(t.key))),
    changes,
    watched,
  );
  const inTxCounts = Object.fromEntries(watched.map((t) => [t.key, own.inside[t.key]!]));
  // Read on the runner's pool while the catalog verdict reads on the transaction; awaited last.
  const concurrent = readConcurrentWrites(input.db, input.pre, Object.keys(inTxCounts));
  concurrent.catch(() => {});
  // The change ledger's triggers write to safe_run for the script's own statements: those rows, exactly, are allowed.
  const ownLedger = await readOwnLedger(trx);
  const violations = [
    ...settingViolations(baseline.settings, settingsAfter),
    ...evidenceSchemaViolations(baseline.evidence, await readEvidenceSchema(trx), ledgerAllowance(ownLedger)),
    ...catalogViolations(
      await readCatalogVerdict(trx, { writes: baseline.catalogWrites, ownRows: input.prepared.ownRows }, trust, ownLocks, () =>
        readCatalogStateAt(input.db, baseline.snapshotAtBegin),
      ),
      script,
    ),
    ...evaluateGuards({
      script,
      criticalTables: config.criticalTables,
      changes: measured.changes,
      countsBefore: Object.fromEntries(Object.entries(input.pre.tables).map(([k, s]) => [k, s.rows])),
      countsAfter: inTxCounts,
      ownNet: own.net,
      cascadeFrom: input.cascadeFrom,
      partitionParent: declaredParents(current.shapes, script.touches),
    }),
  ];
  // Only a superuser can switch counting off; under a role the counters are the whole story.
  if (trust === 'superuser') violations.push(...uncountedChanges(own, changes));
  violations.push(...(await sequenceResets(trx, baseline.xact.sequences, current.sequences)), ...foreignWriteViolations(ownLocks));
  const ledger = ownLedger
    ? ledgerCrossCheck(ownLedger, changes, await readProtectedKeys(input.db), (key) => current.shapes.get(key)?.leafPartitions ?? [])
    : null;
  // Two witnesses that disagree prove nothing about what the run did: it does not commit.
  for (const d of ledger?.disagreements ?? []) violations.push({ table: d.table, rule: 'ledger-disagrees', detail: d.detail });
  return {
    changes: measured.changes,
    inTxCounts,
    violations,
    sequencesUsed: await sequencesDrawnHere(trx, measured.sequencesUsed),
    concurrent: await concurrent,
    ledger,
  };
}

/**
 * A script that ends the guarded transaction (a COMMIT the policy did not see, a
 * procedure) leaves the guard: what it did before is committed, and its later statements
 * ran in autocommit. The transaction id tells: outside the transaction it is gone.
 */
async function escapedTransaction(trx: Db, xid: string): Promise<boolean> {
  try {
    const { rows } = await sql<{ xid: string | null }>`select pg_catalog.txid_current_if_assigned()::text as xid`.execute(trx);
    return rows[0]?.xid !== xid;
  } catch {
    // Aborted by the script's error (25P02) or a dead connection: still inside, or gone with it.
    return false;
  }
}

/** A partitioned table's rows live in its leaves: its own change is theirs, summed. */
function withLeavesSummed(changes: Readonly<Record<TableKey, TableChange>>, current: XactState): Record<TableKey, TableChange> {
  const out: Record<TableKey, TableChange> = { ...changes };
  for (const shape of current.shapes.values()) {
    const leaves = shape.leafPartitions.flatMap((leaf) => (changes[leaf] ? [changes[leaf]!] : []));
    if (!leaves.length) continue;
    out[shape.key] = leaves.reduce(addChanges);
  }
  return out;
}

/** After the script: fingerprints only where its own strong lock could have changed a shape (measureChanges). */
async function readXactState(trx: Db, ownStrongLocks: ReadonlySet<number>): Promise<XactState> {
  const [counters, shapes, sequences] = [
    await readXactCounters(trx),
    await readTableShapes(trx, ownStrongLocks),
    await readSequencePositions(trx),
  ];
  return { counters, shapes, sequences };
}

/**
 * Declared, cascaded and critical tables that exist now: the ones whose exact count the
 * guards and the post-snapshot need.
 */
function guardedTables(input: TransactionInput, current: XactState): { schema: string; name: string; key: TableKey }[] {
  const watched = watchedTableKeys(input.script, input.config);
  return [...new Set([...watched, ...input.exactTables])].flatMap((key) => {
    const shape = current.shapes.get(key);
    // A cascaded table the script's role may not read is left to the post-snapshot, which
    // counts it on the runner's connection: the guards only need the declared and critical ones.
    if (!shape || (!watched.has(key) && shape.readable === false)) return [];
    return [{ schema: shape.schema, name: shape.name, key }];
  });
}

function decideStatus(input: TransactionInput, error: unknown, violations: readonly Violation[]): OutcomeStatus {
  if (input.interrupt.signal) return 'interrupted';
  // A refused statement is a violation even when the script caught the error and went on.
  if (violations.length) return 'guard-violation';
  if (error) return 'failed';
  if (input.dryRun) return 'dry-run';
  return 'committing';
}
