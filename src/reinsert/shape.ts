import { sql } from 'kysely';
import type { Db } from '../db/connection.js';
import { quoteTable } from '../db/names.js';
import { usageError } from '../errors.js';
import type { ReinsertTable } from './types.js';

/**
 * What the engine needs to know of a live table to put rows into it: the columns it may
 * write (generated columns are computed again), its primary key (how "exists now" is
 * decided), whether an identity column refuses written values unless overridden, and
 * whether it holds rows at all (a table without a primary key is only refilled when empty).
 */
export interface TableShape extends ReinsertTable {
  readonly columns: readonly string[];
  readonly primaryKey: readonly string[];
  /** GENERATED ALWAYS AS IDENTITY columns: an insert must say OVERRIDING SYSTEM VALUE, an update leaves them alone. */
  readonly identityAlways: readonly string[];
  readonly empty: boolean;
  /** json and jsonb columns: their text from an archive is parsed, so they go back as documents, not strings. */
  readonly jsonColumns: readonly string[];
}

export async function readTableShape(db: Db, table: ReinsertTable): Promise<TableShape> {
  const regclass = quoteTable(table.schema, table.name);
  const { rows: exists } = await sql<{ oid: number | null }>`select to_regclass(${regclass})::oid as oid`.execute(db);
  const oid = exists[0]?.oid;
  if (!oid) {
    throw usageError(
      `${table.key} does not exist in the live database.`,
      'Recreate the table first (its definition is in the backup: `safe-run restore <run> --table T` puts it in a scratch database).',
    );
  }
  const { rows: columns } = await sql<{ name: string; identity: string; generated: string; json: boolean }>`
    select a.attname as name, a.attidentity as identity, a.attgenerated as generated,
           a.atttypid in ('pg_catalog.json'::pg_catalog.regtype, 'pg_catalog.jsonb'::pg_catalog.regtype) as json
      from pg_catalog.pg_attribute a
     where a.attrelid = ${oid} and a.attnum > 0 and not a.attisdropped
     order by a.attnum`.execute(db);
  const { rows: key } = await sql<{ name: string }>`
    select a.attname as name
      from pg_catalog.pg_index i
      join lateral unnest(i.indkey) with ordinality k(attnum, n) on true
      join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
     where i.indrelid = ${oid} and i.indisprimary
     order by k.n`.execute(db);
  const { rows: any } = await sql<{ one: number }>`select 1 as one from ${sql.id(table.schema, table.name)} limit 1`.execute(db);
  return {
    ...table,
    columns: columns.filter((c) => c.generated === '').map((c) => c.name),
    primaryKey: key.map((k) => k.name),
    identityAlways: columns.filter((c) => c.identity === 'a').map((c) => c.name),
    empty: any.length === 0,
    jsonColumns: columns.filter((c) => c.json).map((c) => c.name),
  };
}

/**
 * Without a primary key nothing says which rows are "the same row": re-inserting into a
 * table that holds rows could duplicate every one of them. Refused unless it is empty now.
 */
export function assertReinsertable(shape: TableShape): void {
  if (shape.primaryKey.length || shape.empty) return;
  throw usageError(
    `${shape.key} has no primary key and is not empty: safe-run cannot tell which of its rows are already there, so it does not re-insert into it.`,
    `Add a primary key, or restore into a scratch database (leave out --in-place) and copy the rows you need by hand.`,
  );
}
