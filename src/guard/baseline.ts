import { sql } from 'kysely';
import type { Db } from '../db/connection.js';
import type { TableKey } from '../records/index.js';
import { listCatalogs, prepareOwnCatalogRows, type OwnRowsScan } from './catalog-authors.js';
import type { TableShape } from './measure.js';
import { readTrust, useCatalogSearchPath } from './settings.js';
import { readTableShapes } from './shapes.js';

/**
 * The heavy half of the guard's baseline: every table's shape with its fingerprint, deparsing
 * work on a few hundred objects that does not need the script's transaction: it describes the
 * committed catalog, which is what that transaction sees until the script runs. So it is read
 * on the script's own session (same role, same temp namespace, the same search path as
 * inside) in a read-only transaction of its own, while the backup runs, and the script's
 * transaction starts with only its own counters, settings and sequences to read.
 *
 * The catalog objects (catalog-changes.ts) are not read here at all: most scripts never write
 * the catalogs, and the one that does is compared with the catalog exactly as its transaction
 * found it at BEGIN, read afterwards in the snapshot it exported then (readCatalogStateAt).
 * That reading takes no lock a script can hold against it (catalog-state-sql.ts).
 *
 * What this moves: DDL another session commits between this read and the end of the
 * script shows in the shapes as before, over a window that now starts during the
 * backup rather than at BEGIN. It can only add a change (and then only where the script's
 * transaction wrote catalog rows or took a strong lock itself), never hide one.
 */
export interface PreparedBaseline {
  readonly shapes: ReadonlyMap<TableKey, TableShape>;
  /** For a superuser, the scan for catalog rows its transaction wrote, prepared (catalog-verdict.ts). */
  readonly ownRows: OwnRowsScan | null;
}

export async function prepareBaseline(scriptDb: Db): Promise<PreparedBaseline> {
  return scriptDb
    .transaction()
    .setAccessMode('read only')
    .execute(async (trx) => {
      // The same path the transaction measures under: it shapes what the deparsers print.
      await useCatalogSearchPath(trx);
      // Only a superuser's verdict uses it (catalog-verdict.ts); under a role the counters do.
      const ownRows = (await readTrust(trx)) === 'superuser' ? await prepareOwnCatalogRows(trx, await listCatalogs(trx)) : null;
      return { shapes: await readTableShapes(trx), ownRows };
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
