import { canonicalJson } from '../audit/canonical.js';
import { listArchive } from '../backup/archive.js';
import { pgChildEnv } from '../backup/child-env.js';
import { resolvePgTool } from '../backup/pg-tools.js';
import type { Config } from '../config/config.js';
import type { Db } from '../db/connection.js';
import { readIdentity, serverMajor } from '../db/identity.js';
import { parseTableName } from '../db/names.js';
import type { TargetDatabase, TargetHandle } from '../db/target.js';
import { usageError } from '../errors.js';
import { showRun, type RunRecord } from '../history/run-record.js';
import type { Logger } from '../logger.js';
import { ledgerInstalled, readLedger, type LedgerStatement } from '../reinsert/ledger-rows.js';
import { liveRows, missingRows, writtenSince } from '../reinsert/live-rows.js';
import { runReinsert, type ReinsertResult } from '../reinsert/run.js';
import { withSealedRows } from '../reinsert/sealed-rows.js';
import { readTableShape, type TableShape } from '../reinsert/shape.js';
import { primaryKeyOf } from '../reinsert/statements.js';
import type { JsonRow, ReinsertStep, ReinsertTable } from '../reinsert/types.js';
import type { TableChange, TableKey } from '../records/index.js';
import { verifiedArchive } from './archive-check.js';
import { readArchiveRows, type ArchiveReader } from './archive-rows.js';
import { orderByForeignKeys } from './target-tables.js';

export interface UndoOptions {
  readonly run: string;
  readonly skipConflicts: boolean;
  readonly dryRun: boolean;
  readonly reason: string | null;
  readonly yes?: boolean;
}

/** A row the undo must not touch: someone else changed it since the run. */
export interface UndoConflict {
  readonly table: TableKey;
  /** The primary key's values, as JSON. */
  readonly key: string;
  readonly why: string;
}

export interface UndoResult extends ReinsertResult {
  readonly undone: { readonly runId: string; readonly script: string };
  /** Per table: where the old rows came from. */
  readonly sources: Readonly<Record<TableKey, 'ledger' | 'backup'>>;
  /** Left out under --skip-conflicts. */
  readonly skipped: readonly UndoConflict[];
  /** What could not be undone at all, and why (left out under --skip-conflicts). */
  readonly refused: readonly string[];
}

interface Planned {
  readonly steps: ReinsertStep[];
  readonly conflicts: UndoConflict[];
  readonly refused: string[];
  readonly sources: Record<TableKey, 'ledger' | 'backup'>;
}

/**
 * `safe-run undo <run>`: put back what one committed run changed, as a guarded run of its own.
 * Where the ledger kept the run's rows (protected tables), deleted rows are re-inserted,
 * updated rows set back and inserted rows deleted. Elsewhere only the run's backup is there:
 * it holds the rows as they were, not which ones the run wrote, so only deletions can be undone.
 */
export async function undoRun(
  config: Config,
  options: UndoOptions,
  target: TargetHandle,
  runTarget: TargetHandle,
  log: Logger,
): Promise<UndoResult> {
  const record = await showRun(config, options.run, target, log);
  if (!record.status.committed || !record.wal.xid) {
    throw usageError(
      `Run ${record.runId} did not commit (${record.status.status}): it changed nothing, so there is nothing to undo.`,
      '`safe-run show <run>` shows what it recorded.',
    );
  }
  const live = await target.open();
  const planned = await planUndo(config, record, live, log);
  if ((planned.conflicts.length || planned.refused.length) && !options.skipConflicts) {
    const lines = [...planned.refused, ...planned.conflicts.map((c) => `${c.table} ${c.key}: ${c.why}`)];
    throw usageError(
      `Cannot undo run ${record.runId} as a whole:\n  ${lines.join('\n  ')}`,
      'Nothing was changed. --skip-conflicts undoes the rest and leaves these as they are.',
    );
  }
  const script = record.intent?.script.name ?? '?';
  const result = await runReinsert(
    config,
    live.db,
    {
      name: 'undo',
      description: `Undo run ${record.runId} (${script})`,
      source: [`undo-run=${record.runId}`, `xid=${record.wal.xid}`],
      steps: planned.steps,
      exact: true,
    },
    { runTarget, reason: options.reason ?? `undo of run ${record.runId}`, dryRun: options.dryRun, yes: options.yes },
    log,
  );
  return {
    ...result,
    undone: { runId: record.runId, script },
    sources: planned.sources,
    skipped: planned.conflicts,
    refused: planned.refused,
  };
}

async function planUndo(config: Config, record: RunRecord, live: TargetDatabase, log: Logger): Promise<Planned> {
  const { db } = live;
  const xid = record.wal.xid!;
  const kept = (await ledgerInstalled(db)) ? await withSealedRows(config.evidenceDir, await readLedger(db, { by: 'xid', xid }), log) : [];
  const planned: Planned = { steps: [], conflicts: [], refused: [], sources: {} };
  const changed = Object.entries(record.changes).filter(([, c]) => c.inserted || c.updated || c.deleted || c.truncated);
  const tables = await orderByForeignKeys(
    db,
    changed.map(([key]) => tableOf(record, key)),
  );
  let archive: ArchiveReader | null = null;
  const inserts: ReinsertStep[] = [];
  const others: ReinsertStep[] = [];
  for (const table of tables) {
    const shape = await readTableShape(db, table);
    const statements = kept.filter((s) => s.table === table.key);
    if (!shape.primaryKey.length) {
      planned.refused.push(`${table.key} has no primary key: its rows cannot be told apart, so its changes are not undone.`);
      continue;
    }
    if (statements.length) {
      planned.sources[table.key] = 'ledger';
      await planFromLedger(db, shape, statements, planned, inserts, others);
    } else {
      planned.sources[table.key] = 'backup';
      archive ??= await openArchive(config, record, live);
      await planFromBackup(db, shape, record, record.changes[table.key]!, archive, planned, inserts);
    }
  }
  // Deletes and updates children first (they free what parents hold), inserts parents first.
  planned.steps.push(...others.reverse(), ...inserts);
  return planned;
}

async function planFromLedger(
  db: Db,
  shape: TableShape,
  statements: readonly LedgerStatement[],
  planned: Planned,
  inserts: ReinsertStep[],
  others: ReinsertStep[],
): Promise<void> {
  const incomplete = statements.filter((s) => s.rowsNotKept > 0);
  if (incomplete.length) {
    planned.refused.push(
      `${shape.key}: the ledger did not keep every row (${incomplete.map((s) => `#${s.id} ${s.operation}, ${s.rowsNotKept} not kept`).join('; ')}; ledger.keepRowsMax).`,
    );
    return;
  }
  const old = statements.filter((s) => s.operation !== 'INSERT' && s.operation !== 'UPDATE').flatMap((s) => s.old);
  const added = statements.filter((s) => s.operation === 'INSERT').flatMap((s) => s.new);
  const pairs = statements.filter((s) => s.operation === 'UPDATE').flatMap((s) => pairByKey(shape, s.old, s.new));
  if (old.length) {
    const missing = await missingRows(db, shape, old);
    const back = new Set(missing.map((r) => primaryKeyOf(shape, r)));
    for (const row of old.filter((r) => !back.has(primaryKeyOf(shape, r)))) {
      planned.conflicts.push({
        table: shape.key,
        key: primaryKeyOf(shape, row),
        why: 'deleted by the run, and a row with this key exists again',
      });
    }
    if (missing.length) inserts.push({ op: 'insert', table: shape, rows: missing });
  }
  const unchanged = await stillAsWritten(db, shape, [...added, ...pairs.map((p) => p.new)], planned);
  const removable = added.filter((r) => unchanged.has(primaryKeyOf(shape, r)));
  const settable = pairs.filter((p) => unchanged.has(primaryKeyOf(shape, p.new)));
  if (settable.length) others.push({ op: 'update', table: shape, rows: settable });
  if (removable.length) others.push({ op: 'delete', table: shape, rows: removable });
}

/** Keys of the rows that are live now exactly as the run left them; the others are conflicts, named. */
async function stillAsWritten(db: Db, shape: TableShape, written: readonly JsonRow[], planned: Planned): Promise<Set<string>> {
  if (!written.length) return new Set();
  const now = new Map((await liveRows(db, shape, written)).map((r) => [primaryKeyOf(shape, r), canonicalJson(r)]));
  const same = new Set<string>();
  for (const row of written) {
    const key = primaryKeyOf(shape, row);
    const live = now.get(key);
    if (live === canonicalJson(row)) same.add(key);
    else
      planned.conflicts.push({
        table: shape.key,
        key,
        why: live === undefined ? 'written by the run, deleted since' : 'written by the run, changed since',
      });
  }
  return same;
}

export function pairByKey(shape: TableShape, old: readonly JsonRow[], written: readonly JsonRow[]): { old: JsonRow; new: JsonRow }[] {
  const before = new Map(old.map((r) => [primaryKeyOf(shape, r), r]));
  return written.flatMap((row) => {
    const was = before.get(primaryKeyOf(shape, row));
    return was ? [{ old: was, new: row }] : [];
  });
}

/**
 * Without the ledger, the run's backup holds the table as it was before the run. The rows
 * missing now are the run's deletions when their number is exactly what the run deleted;
 * otherwise someone else deleted or re-inserted rows since, and the rows written after the
 * run began (their xmin is younger) are named.
 */
async function planFromBackup(
  db: Db,
  shape: TableShape,
  record: RunRecord,
  change: TableChange,
  archive: ArchiveReader,
  planned: Planned,
  inserts: ReinsertStep[],
): Promise<void> {
  const why = (what: string) =>
    `${shape.key}: the run ${what}; without the ledger only its backup is there, which holds the rows as they were, not which ones the run wrote, so this cannot be undone. \`safe-run protect ${shape.key} --keep-rows\` makes it possible for later runs.`;
  if (change.updated) planned.refused.push(why(`updated ${change.updated} rows`));
  if (change.inserted) planned.refused.push(why(`inserted ${change.inserted} rows`));
  if (change.truncated) planned.refused.push(why('truncated the table'));
  if (!change.deleted || change.truncated) return;
  if (!record.backup?.tables.includes(shape.key)) {
    planned.refused.push(`${shape.key}: the run deleted ${change.deleted} rows, but its backup does not hold the table.`);
    return;
  }
  const rows = await readArchiveRows(archive, shape);
  const missing = await missingRows(db, shape, rows);
  if (missing.length === change.deleted) {
    inserts.push({ op: 'insert', table: shape, rows: missing });
    return;
  }
  if (missing.length > change.deleted) {
    planned.refused.push(
      `${shape.key}: ${missing.length} rows of the backup are missing now, but the run deleted ${change.deleted}: others deleted rows since, and the backup cannot tell which were the run's. \`safe-run restore ${record.runId} --in-place --table ${shape.key}\` puts back every missing row.`,
    );
    return;
  }
  for (const row of await writtenSince(db, shape, rows, record.wal.xid!)) {
    planned.conflicts.push({
      table: shape.key,
      key: primaryKeyOf(shape, row),
      why: 'in the backup, and written again after the run (re-inserted or changed)',
    });
  }
  planned.refused.push(
    `${shape.key}: the run deleted ${change.deleted} rows and only ${missing.length} are missing now; the others exist again.`,
  );
  if (missing.length) inserts.push({ op: 'insert', table: shape, rows: missing });
}

async function openArchive(config: Config, record: RunRecord, live: TargetDatabase): Promise<ArchiveReader> {
  if (!record.backup) throw usageError(`Run ${record.runId} recorded no backup.`);
  const archive = await verifiedArchive(config.evidenceDir, record.runId, record.backup);
  const pgRestore = await resolvePgTool('pg_restore', serverMajor(await readIdentity(live.db, live.url)), config.pgBinDir);
  const env = pgChildEnv(live.url, 'safe-run undo');
  return { pgRestore: pgRestore.path, archive: archive.path, toc: await listArchive(pgRestore.path, archive.path, env), env };
}

/** Exact schema and name from the run's pre-snapshot: a `schema.table` key cannot be split at a dot reliably. */
function tableOf(record: RunRecord, key: TableKey): ReinsertTable {
  const state = record.snapshots.pre?.tables[key];
  if (state) return { key, schema: state.schema, name: state.name };
  const { schema, table } = parseTableName(key);
  return { key, schema, name: table };
}
