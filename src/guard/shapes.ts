import type { Db } from '../db/connection.js';
import { readTableCatalog } from '../db/catalog.js';
import type { TableKey } from '../snapshot/types.js';
import type { TableShape } from './measure.js';

/** The part of the catalog the guards compare before and after the script: storage and shape. */
export async function readTableShapes(trx: Db): Promise<Map<TableKey, TableShape>> {
  const catalog = await readTableCatalog(trx);
  return new Map(
    Object.values(catalog).map((t) => [t.key, { key: t.key, schema: t.schema, name: t.name, oid: t.oid, relfilenode: t.relfilenode, fingerprint: t.fingerprint }]),
  );
}
