import { sql } from 'kysely';
import type { Db } from '../db/connection.js';
import { parseExact, stringifyExact } from '../db/exact-json.js';
import { quoteTable } from '../db/names.js';
import { pkMatch } from './statements.js';
import type { TableShape } from './shape.js';
import type { JsonRow } from './types.js';

/** Rows per lookup: one jsonb parameter each. */
const BATCH = 2000;

/** The rows whose primary key is not in the live table now: the ones a re-insert would add. */
export async function missingRows(db: Db, shape: TableShape, rows: readonly JsonRow[]): Promise<JsonRow[]> {
  const table = quoteTable(shape.schema, shape.name);
  const found = await byBatch(rows, (batch) =>
    sql<{ i: string }>`
      select e.i::text as i
        from jsonb_array_elements(${stringifyExact(batch)}::jsonb) with ordinality as e(value, i)
       cross join lateral jsonb_populate_record(null::${sql.raw(table)}, e.value) as r
       where not exists (select 1 from ${sql.raw(table)} x where ${sql.raw(pkMatch(shape, 'x', 'r'))})`.execute(db),
  );
  return found.map(({ batch, row }) => batch[Number(row.i) - 1]!);
}

/**
 * Rows of the list that are in the live table now with a row version written after the
 * transaction `xid` began (its xmin is younger): re-inserted or changed by someone since a run.
 * Returned as they are now. `xid` is the run's 64-bit transaction id; xmin holds its low 32 bits.
 */
export async function writtenSince(db: Db, shape: TableShape, rows: readonly JsonRow[], xid: string): Promise<JsonRow[]> {
  const table = quoteTable(shape.schema, shape.name);
  const xid32 = (BigInt(xid) % 4294967296n).toString();
  const found = await byBatch(rows, (batch) =>
    sql<{ live: string }>`
      select to_jsonb(x)::text as live
        from jsonb_array_elements(${stringifyExact(batch)}::jsonb) as e(value)
       cross join lateral jsonb_populate_record(null::${sql.raw(table)}, e.value) as r
        join ${sql.raw(table)} x on ${sql.raw(pkMatch(shape, 'x', 'r'))}
       where pg_catalog.age(x.xmin) < pg_catalog.age(${xid32}::text::xid)`.execute(db),
  );
  return found.map(({ row }) => parseExact(row.live) as JsonRow);
}

/** The live rows with the primary keys of `rows`, as to_jsonb gives them (numbers exact, as the ledger's rows are read). */
export async function liveRows(db: Db, shape: TableShape, rows: readonly JsonRow[]): Promise<JsonRow[]> {
  const table = quoteTable(shape.schema, shape.name);
  const found = await byBatch(rows, (batch) =>
    sql<{ live: string }>`
      select to_jsonb(x)::text as live
        from jsonb_array_elements(${stringifyExact(batch)}::jsonb) as e(value)
       cross join lateral jsonb_populate_record(null::${sql.raw(table)}, e.value) as r
        join ${sql.raw(table)} x on ${sql.raw(pkMatch(shape, 'x', 'r'))}`.execute(db),
  );
  return found.map(({ row }) => parseExact(row.live) as JsonRow);
}

async function byBatch<R>(
  rows: readonly JsonRow[],
  query: (batch: readonly JsonRow[]) => Promise<{ rows: R[] }>,
): Promise<{ batch: readonly JsonRow[]; row: R }[]> {
  const out: { batch: readonly JsonRow[]; row: R }[] = [];
  for (let i = 0; i < rows.length; i += BATCH) {
    const batch = rows.slice(i, i + BATCH);
    for (const row of (await query(batch)).rows) out.push({ batch, row });
  }
  return out;
}
