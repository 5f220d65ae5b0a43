import type { Db } from '../db/connection.js';
import { readTableCatalog } from '../db/catalog.js';
import type { TableKey } from '../records/index.js';
import type { TableShape } from './measure.js';

/**
 * The part of the catalog the guards compare before and after the script: storage and shape.
 * `fingerprintsOf` as in readTableCatalog: after the script, only the tables its own
 * transaction locked strongly need one (measureChanges compares no other).
 */
export async function readTableShapes(trx: Db, fingerprintsOf?: ReadonlySet<number>): Promise<Map<TableKey, TableShape>> {
  const catalog = await readTableCatalog(trx, { fingerprintsOf });
  return new Map(
    Object.values(catalog).map((t) => [
      t.key,
      {
        key: t.key,
        schema: t.schema,
        name: t.name,
        oid: t.oid,
        relfilenode: t.relfilenode,
        fingerprint: t.fingerprint,
        leafPartitions: t.leafPartitions,
        readable: t.readable,
      },
    ]),
  );
}

/**
 * Declaring a partitioned table declares its partitions: rows live in the leaves, and an
 * operator writes `events: insert`, not one line per month. Leaves declared on their own
 * keep their own rules.
 */
export function declaredParents(
  shapes: ReadonlyMap<TableKey, TableShape>,
  touches: Readonly<Record<TableKey, unknown>>,
): Record<TableKey, TableKey> {
  const parents: Record<TableKey, TableKey> = {};
  for (const shape of shapes.values()) {
    if (!touches[shape.key]) continue;
    for (const leaf of shape.leafPartitions) if (!touches[leaf]) parents[leaf] = shape.key;
  }
  return parents;
}
