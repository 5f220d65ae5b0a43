import { sql, type ControlledTransaction } from 'kysely';
import { directGate } from '../script/gate.js';
import type { AuditLog } from '../audit/log.js';
import type { Config } from '../config/config.js';
import type { Db } from '../db/connection.js';
import { evaluateGuards } from '../guard/rules.js';
import {
  countRowsExact,
  measureChanges,
  readOwnStrongLocks,
  readSequencePositions,
  readXactCounters,
  sequencesDrawnHere,
  type XactState,
} from '../guard/measure.js';
import { declaredParents, readTableShapes } from '../guard/shapes.js';
import type { Logger } from '../logger.js';
import type { LoadedScript } from '../script/load.js';
import type { Snapshot, TableKey } from '../snapshot/types.js';
import type { Interrupt } from './interrupt.js';
import { toRunError } from './run-error.js';
import type { DriftFinding, OutcomeStatus, RunOutcomeBody, TableChange, Violation } from './types.js';

/**
 * Steps 7 to 10 of the pipeline: the script's transaction, measured from inside, judged by
 * the guards, and an outcome entry that is durable before COMMIT or ROLLBACK is issued.
 */
export interface TransactionInput {
  readonly db: Db;
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
  readonly audit: AuditLog;
  readonly interrupt: Interrupt;
  readonly log: Logger;
}

export interface TransactionResult {
  readonly outcome: RunOutcomeBody;
  readonly scriptOutput: unknown;
  /** Still open: the caller commits it (status `committing`) or rolls it back. */
  readonly trx: ControlledTransaction<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export async function runScriptTransaction(input: TransactionInput): Promise<TransactionResult> {
  const { config, script, log } = input;
  const timings: Record<string, number> = {};
  const trx = await input.db.startTransaction().execute();
  // The insert position, not the write position: the write position lags behind commits
  // that are not flushed yet, and point-in-time recovery needs where this run really starts.
  const { rows } = await sql<{ pid: number; xid: string; lsn: string }>`
    select pg_backend_pid() as pid, txid_current()::text as xid, pg_current_wal_insert_lsn()::text as lsn`.execute(trx);
  const { pid, xid, lsn } = rows[0]!;
  await sql`select set_config('application_name', ${`safe-run:${script.name}:${input.runId}`}, true),
                   set_config('statement_timeout', ${`${config.statementTimeoutMs}ms`}, true),
                   set_config('lock_timeout', ${`${config.lockTimeoutMs}ms`}, true)`.execute(trx);
  input.interrupt.onInterrupt(() => {
    void sql`select pg_cancel_backend(${pid})`.execute(input.session).catch(() => {});
  });

  let t = Date.now();
  const baseline = await readXactState(trx);
  timings.baseline = Date.now() - t;

  t = Date.now();
  let scriptOutput: unknown;
  let error: unknown = null;
  try {
    const context = { gate: directGate(trx), args: input.args, log, dryRun: input.dryRun, signal: new AbortController().signal };
    scriptOutput = await script.run(context);
  } catch (e) {
    error = e;
  }
  timings.script = Date.now() - t;
  if (!error) error = await escapedTransaction(trx, xid);

  let changes: Record<TableKey, TableChange> = {};
  let inTxCounts: Record<TableKey, number> = {};
  let violations: Violation[] = [];
  let sequencesUsed: string[] = [];
  if (!error && !input.interrupt.signal) {
    t = Date.now();
    try {
      const current = await readXactState(trx);
      const measured = measureChanges(baseline, current, await readOwnStrongLocks(trx));
      changes = measured.changes;
      sequencesUsed = await sequencesDrawnHere(trx, measured.sequencesUsed);
      inTxCounts = await countRowsExact(trx, guardedTables(input, current));
      violations = evaluateGuards({
        script,
        criticalTables: config.criticalTables,
        changes,
        countsBefore: Object.fromEntries(Object.entries(input.pre.tables).map(([k, s]) => [k, s.rows])),
        countsAfter: inTxCounts,
        cascadeFrom: input.cascadeFrom,
        partitionParent: declaredParents(current.shapes, script.touches),
      });
    } catch (e) {
      // A run that cannot be measured cannot be judged, so it is not committed (e.g. the connection died).
      error = e;
    }
    timings.measure = Date.now() - t;
  }

  const status = decideStatus(input, error, violations);
  const outcome: RunOutcomeBody = {
    status,
    changes,
    inTxCounts,
    violations,
    error: error ? toRunError(error, script) : input.interrupt.signal ? { message: `interrupted by ${input.interrupt.signal}` } : null,
    timingsMs: timings,
    xid,
    walLsnStart: lsn,
    sequencesUsed,
    drift: input.drift,
  };
  try {
    // Durable before the transaction ends: if this throws, nothing is committed.
    await input.audit.append('run.outcome', outcome, { runId: input.runId });
  } catch (appendError) {
    await trx.rollback().execute().catch(() => {});
    throw appendError;
  }
  return { outcome, scriptOutput, trx };
}

/**
 * A script that runs COMMIT or ROLLBACK itself (`sql\`commit\``) leaves the guarded
 * transaction: what it did before is outside the guard, and the statements after it ran in
 * autocommit. It cannot be undone here; it is reported as the script's error.
 */
async function escapedTransaction(trx: Db, xid: string): Promise<Error | null> {
  const { rows } = await sql<{ xid: string | null }>`select txid_current_if_assigned()::text as xid`.execute(trx);
  if (rows[0]?.xid === xid) return null;
  return new Error(
    'The script ended the guarded transaction itself (COMMIT or ROLLBACK). Its earlier changes were not guarded and may be committed; run `safe-run check` to see what changed.',
  );
}

async function readXactState(trx: Db): Promise<XactState> {
  const [counters, shapes, sequences] = [await readXactCounters(trx), await readTableShapes(trx), await readSequencePositions(trx)];
  return { counters, shapes, sequences };
}

/** Declared and critical tables that exist now: the ones whose exact count the guards need. */
function guardedTables(input: TransactionInput, current: XactState): { schema: string; name: string; key: TableKey }[] {
  const keys = new Set([...Object.keys(input.script.touches), ...input.script.critical, ...Object.keys(input.config.criticalTables)]);
  return [...keys].flatMap((key) => {
    const shape = current.shapes.get(key);
    return shape ? [{ schema: shape.schema, name: shape.name, key }] : [];
  });
}

function decideStatus(input: TransactionInput, error: unknown, violations: readonly Violation[]): OutcomeStatus {
  if (input.interrupt.signal) return 'interrupted';
  if (error) return 'failed';
  if (violations.length) return 'guard-violation';
  if (input.dryRun) return 'dry-run';
  return 'committing';
}
