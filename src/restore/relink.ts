import { readForeignKeys } from '../db/catalog.js';
import type { Db } from '../db/connection.js';
import type { JsonRow, ReinsertStep } from '../reinsert/types.js';
import type { TableKey } from '../records/index.js';

/**
 * A delete in the parent emptied the child's foreign key (ON DELETE SET NULL) rather than
 * removing the row: the row is still there, so an insert skips it. Once the parents are
 * back, the key is set back too, on rows untouched otherwise since. `rows` are the child's
 * rows as they were before (the backup's, or the ledger's old rows).
 */
export async function relinkSteps(
  db: Db,
  inserts: readonly ReinsertStep[],
  before: readonly { readonly table: ReinsertStep['table']; readonly rows: readonly JsonRow[] }[],
): Promise<ReinsertStep[]> {
  const restored = new Set<TableKey>(inserts.map((s) => s.table.key));
  const keys = (await readForeignKeys(db)).filter((k) => k.onDelete === 'set null' && restored.has(k.parent));
  return keys.flatMap((k) => {
    const child = before.find((s) => s.table.key === k.child);
    return child?.rows.length ? [{ op: 'relink' as const, table: child.table, columns: k.childColumns, rows: child.rows }] : [];
  });
}
