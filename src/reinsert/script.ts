import { fileURLToPath } from 'node:url';
import { canonicalJson, sha256Hex } from '../audit/canonical.js';
import { ExitCode, SafeRunError } from '../errors.js';
import type { QueryGate, ScriptRunContext } from '../script/gate.js';
import type { LoadedScript } from '../script/load.js';
import type { Operation, TableKey } from '../records/index.js';
import type { TableShape } from './shape.js';
import { deleteStatement, insertStatement, relinkStatement, updateStatement } from './statements.js';
import type { ReinsertCounts, ReinsertPlan, ReinsertStep } from './types.js';
import { stringifyExact } from '../db/exact-json.js';

/** Rows per statement: one jsonb parameter each, small enough for the server to parse at ease. */
const BATCH = 500;

/**
 * The engine's "script": a LoadedScript like any other, so the pipeline runs it unchanged
 * (lock, snapshot, backup, intent, guarded transaction, measured changes, outcome). It
 * declares exactly the tables and operations of its steps, so the guards hold it to them,
 * and its statements pass through the same gate and statement policy as a user's script.
 * Its path is this module, so the intent's git state says which safe-run code ran it; its
 * sha256 covers the plan with every row, so the signed intent pins what was put back.
 */
export function builtinScript(plan: ReinsertPlan, shapes: ReadonlyMap<TableKey, TableShape>): LoadedScript {
  const source = canonicalJson(plan);
  const touches: Record<TableKey, Operation[]> = {};
  for (const step of plan.steps) {
    const ops = (touches[step.table.key] ??= []);
    const op = step.op === 'relink' ? 'update' : step.op;
    if (!ops.includes(op)) ops.push(op);
  }
  return {
    name: plan.name,
    description: plan.description,
    kind: 'builtin',
    path: fileURLToPath(import.meta.url),
    source,
    sha256: sha256Hex(source),
    touches,
    limits: {},
    critical: [],
    ddl: false,
    run: (context) => runPlan(plan, shapes, context),
    dispose: async () => {},
  };
}

async function runPlan(plan: ReinsertPlan, shapes: ReadonlyMap<TableKey, TableShape>, context: ScriptRunContext): Promise<unknown> {
  const counts: Record<TableKey, ReinsertCounts> = {};
  for (const step of plan.steps) {
    const shape = shapes.get(step.table.key)!;
    const done = await runStep(step, shape, context.gate);
    const before = counts[step.table.key] ?? { offered: 0, inserted: 0, skipped: 0, updated: 0, deleted: 0, relinked: 0 };
    counts[step.table.key] = {
      // A relink offers the same rows as the insert before it.
      offered: before.offered + (step.op === 'relink' ? 0 : step.rows.length),
      relinked: before.relinked + (step.op === 'relink' ? done : 0),
      inserted: before.inserted + (step.op === 'insert' ? done : 0),
      skipped: before.skipped + (step.op === 'insert' ? step.rows.length - done : 0),
      updated: before.updated + (step.op === 'update' ? done : 0),
      deleted: before.deleted + (step.op === 'delete' ? done : 0),
    };
    if (plan.exact && step.op !== 'relink' && done !== step.rows.length) throw changedMeanwhile(step, done);
    context.log.info(`${step.op}: ${step.table.key}`, { rows: step.rows.length, done });
  }
  return { tables: counts };
}

async function runStep(step: ReinsertStep, shape: TableShape, gate: QueryGate): Promise<number> {
  const text =
    step.op === 'insert'
      ? insertStatement(shape)
      : step.op === 'delete'
        ? deleteStatement(shape)
        : step.op === 'relink'
          ? relinkStatement(shape, step.columns)
          : updateStatement(shape);
  let done = 0;
  for (let i = 0; i < step.rows.length; i += BATCH) {
    const batch = step.rows.slice(i, i + BATCH);
    const result = await gate({ sql: text, parameters: [stringifyExact(batch)] });
    done += Number(result.numAffectedRows ?? 0);
  }
  return done;
}

/** Checked when planned and again here: between the two another session may have changed a row. */
function changedMeanwhile(step: ReinsertStep, done: number): SafeRunError {
  return new SafeRunError(
    `${step.table.key}: ${step.op} matched ${done} of ${step.rows.length} rows; the others changed since they were planned, so nothing is put back.`,
    ExitCode.scriptFailed,
    'Run the command again: it names the rows that changed, and --skip-conflicts leaves them out.',
  );
}
