import { backupScope } from '../backup/scope.js';
import type { Config } from '../config/config.js';
import type { Db } from '../db/connection.js';
import { parseTableName, tableKey } from '../db/names.js';
import type { TargetHandle } from '../db/target.js';
import { usageError } from '../errors.js';
import type { Logger } from '../logger.js';
import { ledgerInstalled, readLedger, type LedgerStatement } from '../reinsert/ledger-rows.js';
import { runReinsert, type ReinsertResult } from '../reinsert/run.js';
import { withSealedRows } from '../reinsert/sealed-rows.js';
import { assertReinsertable, readTableShape } from '../reinsert/shape.js';
import { primaryKeyOf } from '../reinsert/statements.js';
import type { JsonRow, ReinsertStep, ReinsertTable } from '../reinsert/types.js';
import type { TableKey } from '../records/index.js';
import { relinkSteps } from './relink.js';
import { orderByForeignKeys } from './target-tables.js';

export type RecoverOptions = (
  { readonly ledger: readonly string[] } | { readonly table: string; readonly since: Date; readonly until: Date | null }
) & {
  readonly withDependents: boolean;
  readonly dryRun: boolean;
  readonly reason: string | null;
  readonly yes?: boolean;
};

export interface RecoverResult extends ReinsertResult {
  /** The ledger statements whose kept rows were offered. */
  readonly statements: readonly { readonly id: string; readonly table: TableKey; readonly operation: string; readonly at: string }[];
}

/** Statements whose old rows are rows that left the table. */
const REMOVING = new Set(['DELETE', 'TRUNCATE', 'DROP']);

/**
 * `safe-run recover`: the rows the change ledger kept when they were deleted (truncated,
 * dropped) go back, newest copy of each key, as a guarded run of the re-insert engine.
 * With --with-dependents, the rows the same transactions removed from the tables the cascade
 * reaches come back too, parents first, and keys emptied by ON DELETE SET NULL are set back.
 */
export async function recoverRows(
  config: Config,
  options: RecoverOptions,
  target: TargetHandle,
  runTarget: TargetHandle,
  log: Logger,
): Promise<RecoverResult> {
  const { db } = await target.open();
  if (!(await ledgerInstalled(db))) {
    throw usageError(
      'No change ledger in this database (safe_run.ledger): there are no kept rows to recover.',
      'Restore from a backup instead: `safe-run backups` lists them, then `safe-run restore <run> --in-place --table T`.',
    );
  }
  const chosen = await chooseStatements(db, options);
  const removing = chosen.filter((s) => REMOVING.has(s.operation));
  if (!removing.length) {
    const what = 'ledger' in options ? `ledger statement ${options.ledger.join(', ')}` : `${tableKey(options.table)} in that window`;
    throw usageError(
      `No kept rows to recover for ${what}: no DELETE, TRUNCATE or DROP with kept rows.`,
      '`safe-run blame <table>` lists the statements.',
    );
  }
  const statements = await withSealedRows(config.evidenceDir, options.withDependents ? await withDependents(db, removing) : removing, log);
  const byTable = new Map<TableKey, { table: ReinsertTable; removed: LedgerStatement[]; updated: LedgerStatement[] }>();
  for (const s of statements) {
    const entry = byTable.get(s.table) ?? { table: { key: s.table, schema: s.schema, name: s.name }, removed: [], updated: [] };
    (REMOVING.has(s.operation) ? entry.removed : entry.updated).push(s);
    byTable.set(s.table, entry);
  }
  const inserts: ReinsertStep[] = [];
  const before: { table: ReinsertTable; rows: JsonRow[] }[] = [];
  for (const table of await orderByForeignKeys(
    db,
    [...byTable.values()].map((e) => e.table),
  )) {
    const entry = byTable.get(table.key)!;
    const shape = await readTableShape(db, table);
    assertReinsertable(shape);
    const rows = newestByKey(shape, entry.removed);
    if (rows.length) inserts.push({ op: 'insert', table, rows });
    before.push({ table, rows: entry.updated.flatMap((s) => s.old) });
  }
  const steps = [...inserts, ...(await relinkSteps(db, inserts, before))];
  const ids = statements.map((s) => s.id);
  const result = await runReinsert(
    config,
    db,
    {
      name: 'recover',
      description: `Put back the rows the ledger kept: statements ${ids.join(', ')}`,
      source: ids.map((id) => `ledger=${id}`),
      steps,
      exact: false,
    },
    { runTarget, reason: options.reason ?? `recover of ledger statements ${ids.join(', ')}`, dryRun: options.dryRun, yes: options.yes },
    log,
  );
  return { ...result, statements: statements.map((s) => ({ id: s.id, table: s.table, operation: s.operation, at: s.at })) };
}

async function chooseStatements(db: Db, options: RecoverOptions): Promise<LedgerStatement[]> {
  if ('ledger' in options) {
    const found = await readLedger(db, { by: 'ids', ids: options.ledger });
    const unknown = options.ledger.filter((id) => !found.some((s) => s.id === id));
    if (unknown.length)
      throw usageError(`No ledger statement ${unknown.join(', ')}.`, '`safe-run blame <table>` names the statements and their ids.');
    return found;
  }
  const { schema, table } = parseTableName(options.table);
  return readLedger(db, {
    by: 'table',
    schema,
    name: table,
    since: options.since.toISOString(),
    until: options.until?.toISOString() ?? null,
  });
}

/**
 * The statements of the same transactions on the tables the cascade reaches: a cascaded
 * delete runs as a statement of its own on each child, under the deleting transaction's id.
 * A DROP (`DROP SCHEMA ... CASCADE`, what `prisma migrate reset` does) takes every table of
 * the schema at once, the parents a child refers to too (usage_events -> models): every
 * table that transaction dropped with kept rows comes back with it.
 */
async function withDependents(db: Db, chosen: readonly LedgerStatement[]): Promise<LedgerStatement[]> {
  const closure = new Set(await backupScope(db, [...new Set(chosen.map((s) => s.table))], 'touched'));
  const dropping = new Set(chosen.filter((s) => s.operation === 'DROP').map((s) => s.xid));
  const seen = new Set(chosen.map((s) => s.id));
  const out = [...chosen];
  for (const xid of new Set(chosen.map((s) => s.xid))) {
    for (const s of await readLedger(db, { by: 'xid', xid })) {
      const reached = closure.has(s.table) || (dropping.has(xid) && s.operation === 'DROP' && s.old.length > 0);
      if (!seen.has(s.id) && reached && (REMOVING.has(s.operation) || s.operation === 'UPDATE')) {
        seen.add(s.id);
        out.push(s);
      }
    }
  }
  return out;
}

/** A key deleted twice in the window (deleted, re-inserted, deleted again) comes back as it was last. */
function newestByKey(shape: Parameters<typeof primaryKeyOf>[0], statements: readonly LedgerStatement[]): JsonRow[] {
  const rows = statements.flatMap((s) => s.old);
  if (!shape.primaryKey.length) return rows;
  const byKey = new Map<string, JsonRow>();
  for (const row of rows) byKey.set(primaryKeyOf(shape, row), row);
  return [...byKey.values()];
}
