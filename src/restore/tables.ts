import { parseTableName, tableKey } from '../db/names.js';
import { usageError } from '../errors.js';
import type { RestorableRun } from './find-run.js';
import type { RestoreTable } from './target-tables.js';

/**
 * The tables to restore: every table of the run's backup, or the --table ones, each of
 * which must be in the backup. Exact schema and table names come from the signed
 * pre-snapshot, since a `schema.table` key cannot be split reliably at a dot.
 */
export function restoreTables(run: RestorableRun, requested: readonly string[]): RestoreTable[] {
  const inBackup = run.backup.tables;
  const keys = requested.length ? [...new Set(requested.map(normalize))] : [...inBackup];
  const missing = keys.filter((k) => !inBackup.includes(k));
  if (missing.length) {
    throw usageError(
      `${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not in the backup of run ${run.runId}; it holds ${inBackup.join(', ') || 'no table'}.`,
      'Name tables as `table` (meaning public.table) or `schema.table`; a run backs up the tables it declares and their cascade children (`--backup full` backs up all).',
    );
  }
  return keys.map((key) => {
    const state = run.snapshot.tables[key];
    const { schema, table } = state ? { schema: state.schema, table: state.name } : parseTableName(key);
    return { key, schema, name: table };
  });
}

function normalize(name: string): string {
  try {
    return tableKey(name);
  } catch {
    throw usageError(`Not a table name: ${name}`, 'Use `table` or `schema.table`.');
  }
}
