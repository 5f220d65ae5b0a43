import { sql, type RawBuilder } from 'kysely';
import { userRelations } from '../db/catalog.js';
import { inImportedSnapshot, type Db } from '../db/connection.js';
import type { PgClass, PgNamespace } from '../db/schema.js';
import type { TableKey } from '../records/index.js';
import type { DumpTable } from './pg-dump-args.js';
import { byCodeUnit } from '../text-order.js';

export interface BackupTable extends DumpTable {
  readonly key: TableKey;
  /** A partitioned parent has no rows of its own, so its archive entry has no TABLE DATA. */
  readonly partitioned: boolean;
}

/**
 * Turns `schema.table` keys into exact schema and table names (a key cannot be split
 * reliably at a dot: names may contain dots), and says which are partitioned. With
 * `keys` null it lists what a full dump must hold: every user table except extension
 * members, whose data pg_dump leaves to the extension.
 *
 * Read inside the exported snapshot when there is one, so this sees the tables pg_dump sees.
 * `db` is a pool, not the session that exported the snapshot: importing it takes a
 * transaction of its own on another connection.
 */
export async function lookupBackupTables(db: Db, snapshotId: string | null, keys: readonly TableKey[] | null): Promise<BackupTable[]> {
  const filter = keys
    ? sql`r.nspname || '.' || r.relname = any(${[...keys]}::text[])`
    : sql`not exists (select 1 from pg_catalog.pg_depend d
                       where d.classid = 'pg_catalog.pg_class'::regclass and d.objid = r.oid and d.deptype = 'e')`;
  if (!snapshotId) return queryTables(db, filter);
  return inImportedSnapshot(db, snapshotId, (trx) => queryTables(trx, filter));
}

/** Every user table with its exact names, extension members included: the scope graph's reading (scope.ts). */
export async function readUserTables(db: Db): Promise<BackupTable[]> {
  return queryTables(db, sql`true`);
}

async function queryTables(db: Db, filter: RawBuilder<unknown>): Promise<BackupTable[]> {
  const result = await sql<Pick<PgNamespace, 'nspname'> & Pick<PgClass, 'relname' | 'relkind'>>`
    select r.nspname, r.relname, r.relkind from (${userRelations}) r where ${filter}`.execute(db);
  return result.rows
    .map((row) => ({ key: `${row.nspname}.${row.relname}`, schema: row.nspname, name: row.relname, partitioned: row.relkind === 'p' }))
    .sort((a, b) => byCodeUnit(a.key, b.key));
}
