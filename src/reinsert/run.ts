import type { Config } from '../config/config.js';
import type { Db } from '../db/connection.js';
import type { TargetHandle } from '../db/target.js';
import type { Logger } from '../logger.js';
import { runGuarded } from '../run/pipeline.js';
import type { RunResult } from '../run/types.js';
import type { TableKey } from '../records/index.js';
import { builtinScript } from './script.js';
import { assertReinsertable, readTableShape, type TableShape } from './shape.js';
import type { ReinsertCounts, ReinsertPlan } from './types.js';

export interface ReinsertOptions {
  /**
   * A handle not opened yet, for the run itself: the pipeline opens it with its own pool
   * (sized for the snapshot and backup, named after the run id, so `show` sees it running).
   */
  readonly runTarget: TargetHandle;
  readonly reason: string | null;
  readonly dryRun: boolean;
  readonly yes?: boolean;
}

export interface ReinsertResult {
  readonly run: RunResult;
  /** Per table: rows offered, inserted, skipped (their key exists now), updated, deleted. */
  readonly tables: Readonly<Record<TableKey, ReinsertCounts>>;
}

/**
 * restore --in-place, undo and recover all end here: the plan runs as an ordinary guarded
 * run (its own snapshot, backup, signed intent and outcome, exact measured changes), with a
 * built-in script in place of a file. `db` is the command's handle on the live database,
 * read here only to learn each table's shape before the run starts.
 */
export async function runReinsert(
  config: Config,
  db: Db,
  plan: ReinsertPlan,
  options: ReinsertOptions,
  log: Logger,
): Promise<ReinsertResult> {
  const shapes = new Map<TableKey, TableShape>();
  for (const step of plan.steps) {
    if (shapes.has(step.table.key)) continue;
    const shape = await readTableShape(db, step.table);
    if (step.op === 'insert') assertReinsertable(shape);
    shapes.set(step.table.key, shape);
  }
  const script = builtinScript(plan, shapes);
  const run = await runGuarded(
    config,
    { scriptName: plan.name, args: plan.source, dryRun: options.dryRun, reason: options.reason, yes: options.yes },
    options.runTarget,
    log,
    async () => script,
  );
  const output = run.scriptOutput as { tables?: Record<TableKey, ReinsertCounts> } | undefined;
  return { run, tables: output?.tables ?? {} };
}
