import { sql } from 'kysely';
import type { Db } from '../db/connection.js';
import type { TableKey } from '../records/index.js';
import { listCatalogs } from './catalog-authors.js';
import { readCatalogState, type CatalogState } from './catalog-changes.js';
import type { TableShape } from './measure.js';
import { readTrust, useCatalogSearchPath } from './settings.js';
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
  /** For a superuser, the system catalogs to look for rows its transaction wrote (catalog-verdict.ts). */
  readonly catalogs: readonly string[] | null;
}

export async function prepareBaseline(scriptDb: Db): Promise<PreparedBaseline> {
  return scriptDb
    .transaction()
    .setAccessMode('read only')
    .execute(async (trx) => {
      // The same path the transaction measures under: it shapes what the deparsers print.
      await useCatalogSearchPath(trx);
      // Only a superuser's verdict uses it (catalog-verdict.ts); under a role the counters do.
      const catalogs = (await readTrust(trx)) === 'superuser' ? await listCatalogs(trx) : null;
      return { shapes: await readTableShapes(trx), catalog: await readCatalogState(trx), catalogs };
    });
}

/**
 * SPEC step 7 takes the relfilenode baseline inside the script's transaction: storage that
 * another session replaced (TRUNCATE, a rewrite) between the prepared read and BEGIN must
 * not read as the script's. One cheap query over pg_class; the prepared fingerprints stay.
 */
export async function withStorageNow(trx: Db, shapes: ReadonlyMap<TableKey, TableShape>): Promise<Map<TableKey, TableShape>> {
  const oids = [...shapes.values()].map((s) => String(s.oid));
  const { rows } = await sql<{ oid: string; relfilenode: string }>`
    select c.oid::pg_catalog.int8::pg_catalog.text as oid, c.relfilenode::pg_catalog.int8::pg_catalog.text as relfilenode
      from pg_catalog.pg_class c
     where c.oid = any (${oids}::pg_catalog.oid[])`.execute(trx);
  const now = new Map(rows.map((r) => [Number(r.oid), Number(r.relfilenode)]));
  return new Map([...shapes].map(([key, shape]) => [key, { ...shape, relfilenode: now.get(shape.oid) ?? shape.relfilenode }]));
}
