import { listArchive } from '../backup/archive.js';
import { pgChildEnv } from '../backup/child-env.js';
import { resolvePgTool } from '../backup/pg-tools.js';
import { backupScope } from '../backup/scope.js';
import type { Config } from '../config/config.js';
import type { Db } from '../db/connection.js';
import { readIdentity, serverMajor } from '../db/identity.js';
import type { TargetHandle } from '../db/target.js';
import type { Logger } from '../logger.js';
import { runReinsert, type ReinsertResult } from '../reinsert/run.js';
import { assertReinsertable, readTableShape } from '../reinsert/shape.js';
import type { ReinsertStep } from '../reinsert/types.js';
import type { TableKey } from '../records/index.js';
import { assertHasBackup, verifiedArchive } from './archive-check.js';
import { readArchiveRows } from './archive-rows.js';
import { relinkSteps } from './relink.js';
import { findRestorableRun, type RestorableRun } from './find-run.js';
import { newerLedgerRows, type NewerLedgerRows } from './ledger-newer.js';
import { restoreTables } from './tables.js';
import { orderByForeignKeys, type RestoreTable } from './target-tables.js';

export interface InPlaceOptions {
  readonly run: string;
  readonly tables: readonly string[];
  readonly withDependents: boolean;
  readonly dryRun: boolean;
  readonly reason: string | null;
  readonly yes?: boolean;
}

export interface InPlaceResult extends ReinsertResult {
  /** The run whose backup the rows came from. */
  readonly from: { readonly runId: string; readonly source: string; readonly ts: string };
  readonly archive: { readonly path: string; readonly sha256: string };
  /** Tables the cascade reaches that the backup does not hold: their rows cannot come back from it. */
  readonly notInBackup: readonly TableKey[];
  readonly ledgerNewer: readonly NewerLedgerRows[];
}

/**
 * `safe-run restore <run> --in-place`: the chosen tables' rows from the run's verified
 * archive go back into the live tables, parents first, as a guarded run of the re-insert
 * engine (declared: those tables, insert). Rows whose primary key exists now stay as they are.
 */
export async function restoreInPlace(
  config: Config,
  options: InPlaceOptions,
  target: TargetHandle,
  runTarget: TargetHandle,
  log: Logger,
): Promise<InPlaceResult> {
  const run = await findRestorableRun(config.evidenceDir, options.run);
  assertHasBackup(run.runId, run.backup);
  const { db, url } = await target.open();
  const chosen = restoreTables(run, options.tables);
  const { tables, notInBackup } = options.withDependents ? await withDependents(db, run, chosen) : { tables: chosen, notInBackup: [] };
  // Exit 5 or 4 before anything is read from it: a changed or missing archive restores nothing.
  const archive = await verifiedArchive(config.evidenceDir, run.runId, run.backup);
  const pgRestore = await resolvePgTool('pg_restore', serverMajor(await readIdentity(db, url)), config.pgBinDir);
  const env = pgChildEnv(url, 'safe-run restore');
  const reader = { pgRestore: pgRestore.path, archive: archive.path, toc: await listArchive(pgRestore.path, archive.path, env), env };

  const steps: ReinsertStep[] = [];
  for (const table of await orderByForeignKeys(db, tables)) {
    const shape = await readTableShape(db, table);
    assertReinsertable(shape);
    steps.push({ op: 'insert', table, rows: await readArchiveRows(reader, shape) });
  }
  steps.push(...(await relinkSteps(db, steps, steps)));
  const ledgerNewer = await newerLedgerRows(db, tables, run.ts);
  for (const n of ledgerNewer) {
    log.warn(`the ledger kept ${n.rowsKept} rows of ${n.table} after this backup; \`safe-run recover\` puts back the newer rows`, {
      firstLedgerId: n.firstLedgerId,
    });
  }
  const result = await runReinsert(
    config,
    db,
    {
      name: 'restore-in-place',
      description: `Put back rows of ${tables.map((t) => t.key).join(', ')} from the backup of run ${run.runId}`,
      source: [`from-run=${run.runId}`, `archive-sha256=${archive.sha256}`, ...tables.map((t) => `table=${t.key}`)],
      steps,
      exact: false,
    },
    { runTarget, reason: options.reason ?? `restore --in-place from run ${run.runId}`, dryRun: options.dryRun, yes: options.yes },
    log,
  );
  return {
    ...result,
    from: { runId: run.runId, source: run.source, ts: run.ts },
    archive: { path: run.backup.path!, sha256: archive.sha256 },
    notInBackup,
    ledgerNewer,
  };
}

/**
 * The chosen tables and every table their deletes reach (ON DELETE CASCADE / SET NULL, any
 * depth): what a wipe took along. A partitioned parent holds no rows of its own; its
 * partitions carry them.
 */
async function withDependents(
  db: Db,
  run: RestorableRun,
  chosen: readonly RestoreTable[],
): Promise<{ tables: RestoreTable[]; notInBackup: TableKey[] }> {
  const closure = await backupScope(
    db,
    chosen.map((t) => t.key),
    'touched',
  );
  const inBackup = closure.filter((k) => run.backup.tables.includes(k) && run.snapshot.tables[k]?.kind !== 'partitioned');
  const notInBackup = closure.filter((k) => !run.backup.tables.includes(k));
  return { tables: restoreTables(run, inBackup), notInBackup };
}
