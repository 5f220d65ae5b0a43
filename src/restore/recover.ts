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
import { assertReinsertable, readTableShape, type TableShape } from '../reinsert/shape.js';
import { primaryKeyOf } from '../reinsert/statements.js';
import type { JsonRow, ReinsertStep, ReinsertTable } from '../reinsert/types.js';
import type { TableKey } from '../records/index.js';
import { relinkSteps } from './relink.js';
import { orderByForeignKeys } from './target-tables.js';
import { pairByKey } from './undo.js';

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

/** The next step where the ledger cannot give the rows back. */
const FROM_A_BACKUP = 'Restore from a backup instead: `safe-run backups` lists them, then `safe-run restore <run> --in-place --table T`.';

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
    throw usageError('No change ledger in this database (safe_run.ledger): there are no kept rows to recover.', FROM_A_BACKUP);
  }
  const chosen = await chooseStatements(db, options);
  if ('ledger' in options) assertRecoverable(chosen);
  const removing = chosen.filter((s) => REMOVING.has(s.operation));
  // An UPDATE named by its id is set back; a window (--table) is about rows that left the table.
  const setBack = 'ledger' in options ? chosen.filter((s) => s.operation === 'UPDATE') : [];
  if (!removing.length && !setBack.length) {
    const what = 'ledger' in options ? `ledger statement ${options.ledger.join(', ')}` : `${tableKey(options.table)} in that window`;
    throw usageError(
      `No kept rows to recover for ${what}: no DELETE, TRUNCATE or DROP with kept rows.`,
      '`safe-run blame <table>` lists the statements.',
    );
  }
  const dependents = options.withDependents ? await withDependents(db, removing) : removing;
  const picked = new Set(dependents.map((s) => s.id));
  const setBackIds = new Set(setBack.map((s) => s.id));
  const statements = await withSealedRows(config.evidenceDir, [...dependents, ...setBack.filter((s) => !picked.has(s.id))], log);
  // Judged on the rows the seal vouches for: the live ones may have been deleted since.
  if (statements.every((s) => !s.old.length))
    throw usageError(
      `Ledger statement ${statements.map((s) => s.id).join(', ')} kept no rows: ${[...new Set(statements.map((s) => s.table))].join(', ')} is protected without --keep-rows, or the rows were over ledger.keepRowsMax.`,
      FROM_A_BACKUP,
    );
  const byTable = new Map<
    TableKey,
    { table: ReinsertTable; removed: LedgerStatement[]; updated: LedgerStatement[]; setBack: LedgerStatement[] }
  >();
  for (const s of statements) {
    const entry = byTable.get(s.table) ?? {
      table: { key: s.table, schema: s.schema, name: s.name },
      removed: [],
      updated: [],
      setBack: [],
    };
    (REMOVING.has(s.operation) ? entry.removed : setBackIds.has(s.id) ? entry.setBack : entry.updated).push(s);
    byTable.set(s.table, entry);
  }
  const inserts: ReinsertStep[] = [];
  const updates: ReinsertStep[] = [];
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
    updates.push(...setBackSteps(shape, table, entry.setBack));
  }
  const steps = [...inserts, ...(await relinkSteps(db, inserts, before)), ...updates];
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

/**
 * What `--ledger` may name: a removal (its rows go back) or an UPDATE (its old values go back).
 * An INSERT removed nothing, so "recovering" it would do nothing, silently; DDL kept no rows.
 */
function assertRecoverable(chosen: readonly LedgerStatement[]): void {
  const inserts = chosen.filter((s) => s.operation === 'INSERT');
  if (inserts.length)
    throw usageError(
      `Ledger statement ${inserts.map((s) => `${s.id} is an INSERT into ${s.table}`).join(', ')}: recover puts back rows that were removed or changed, and an INSERT removed none.`,
      'A guarded run\'s inserts: `safe-run undo <run>` deletes them. Another session\'s: docs/ledger.md "Rows an INSERT added" lists them and deletes those still as inserted.',
    );
  const other = chosen.filter((s) => !REMOVING.has(s.operation) && s.operation !== 'UPDATE');
  if (other.length)
    throw usageError(
      `Ledger statement ${other.map((s) => `${s.id} (${s.operation} ${s.table})`).join(', ')} kept no rows to recover: recover takes a DELETE, TRUNCATE, DROP or UPDATE.`,
      '`safe-run blame <table>` names the statements and what each kept.',
    );
}

/**
 * An UPDATE's old values go back where the row is still exactly as that UPDATE left it (a row
 * changed since is left as it is, and counted: offered minus updated). Newest statement first,
 * so two UPDATEs of one row named together unwind in order.
 */
function setBackSteps(shape: TableShape, table: ReinsertTable, statements: readonly LedgerStatement[]): ReinsertStep[] {
  if (!statements.length) return [];
  if (!shape.primaryKey.length)
    throw usageError(
      `${table.key} has no primary key: the rows of UPDATE ${statements.map((s) => s.id).join(', ')} cannot be told apart, so they are not set back.`,
      FROM_A_BACKUP,
    );
  return [...statements]
    .sort((a, b) => Number(b.id) - Number(a.id))
    .map((s) => ({ op: 'update' as const, table, rows: pairByKey(shape, s.old, s.new) }))
    .filter((step) => step.rows.length);
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
