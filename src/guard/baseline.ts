import type { Db } from '../db/connection.js';
import type { TableKey } from '../records/index.js';
import { readCatalogState, type CatalogState } from './catalog-changes.js';
import type { TableShape } from './measure.js';
import { useCatalogSearchPath } from './settings.js';
import { readTableShapes } from './shapes.js';

/**
 * The heavy half of the guard's baseline: every catalog object (catalog-changes.ts) and every
 * table's shape with its fingerprint. Both are deparsing work on a few hundred objects,
 * most of what a baseline costs, and neither needs the script's transaction: they describe
 * the committed catalog, which is what that transaction sees until the script runs. So they
 * are read on the script's own session (same role, same temp namespace, the same search
 * path as inside) in a read-only transaction of their own, while the backup runs, and the
 * script's transaction starts with only its own counters, settings and sequences to read.
 *
 * What this moves: DDL another session commits between this read and the end of the
 * script shows in the comparison as before, over a window that now starts during the
 * backup rather than at BEGIN. It can only add a change (and then only where the script's
 * transaction wrote catalog rows or took a strong lock itself), never hide one.
 */
export interface PreparedBaseline {
  readonly shapes: ReadonlyMap<TableKey, TableShape>;
  readonly catalog: CatalogState;
}

export async function prepareBaseline(scriptDb: Db): Promise<PreparedBaseline> {
  return scriptDb
    .transaction()
    .setAccessMode('read only')
    .execute(async (trx) => {
      // The same path the transaction measures under: it shapes what the deparsers print.
      await useCatalogSearchPath(trx);
      return { shapes: await readTableShapes(trx), catalog: await readCatalogState(trx) };
    });
}
