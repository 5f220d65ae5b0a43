import type { TableKey } from '../records/index.js';

/**
 * What the re-insert engine is asked to do, as one guarded run: rows put back, and (for
 * `undo`) rows set back or removed. Every row is an object keyed by column name in the
 * shape `to_jsonb(row)` gives, the shape the ledger keeps and the archive reader produces,
 * so one statement per step turns it back into a row of the live table.
 */
export type JsonRow = Readonly<Record<string, unknown>>;

export interface ReinsertTable {
  readonly key: TableKey;
  readonly schema: string;
  readonly name: string;
}

export type ReinsertStep =
  /** Put these rows back; a row whose primary key exists now is skipped and counted. */
  | { readonly op: 'insert'; readonly table: ReinsertTable; readonly rows: readonly JsonRow[] }
  /**
   * Set `columns` (a foreign key that ON DELETE SET NULL emptied) back to the rows' values,
   * only where they are NULL now and every other column is still as in the row.
   */
  | { readonly op: 'relink'; readonly table: ReinsertTable; readonly columns: readonly string[]; readonly rows: readonly JsonRow[] }
  /** Remove rows a run inserted, only where the live row is still exactly the one it inserted. */
  | { readonly op: 'delete'; readonly table: ReinsertTable; readonly rows: readonly JsonRow[] }
  /** Set rows back to `old`, only where the live row is still exactly `new`. */
  | { readonly op: 'update'; readonly table: ReinsertTable; readonly rows: readonly { readonly old: JsonRow; readonly new: JsonRow }[] };

export interface ReinsertPlan {
  /** The built-in script's name: `restore-in-place`, `undo` or `recover`. */
  readonly name: string;
  readonly description: string;
  /** Recorded as the run's arguments: where the rows come from (run id, archive hash, ledger ids). */
  readonly source: readonly string[];
  /** In the order they run: parents before children for inserts, children first for deletes. */
  readonly steps: readonly ReinsertStep[];
  /** Refuse a step whose rows changed since (undo): the count must match exactly, or the run fails. */
  readonly exact: boolean;
}

/** Per table, what the engine did; the run's script output. */
export interface ReinsertCounts {
  readonly offered: number;
  readonly inserted: number;
  /** Rows whose primary key exists now: left as they are. */
  readonly skipped: number;
  readonly updated: number;
  readonly deleted: number;
  /** Rows whose foreign key, emptied by ON DELETE SET NULL, was set back. */
  readonly relinked: number;
}
