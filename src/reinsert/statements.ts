import { quoteIdent, quoteTable } from '../db/names.js';
import type { TableShape } from './shape.js';

/**
 * The engine's three statements. Rows arrive as one jsonb array parameter and become rows of
 * the live table through jsonb_populate_record(null::table, row): each value goes through the
 * column type's own input, as COPY would, and a json/jsonb value stays a document.
 *
 * "Exists now" is decided by the primary key with NOT EXISTS, not ON CONFLICT DO NOTHING:
 * DO NOTHING would also swallow a clash on any other unique key (the same email under a new
 * id) and count it as skipped; that clash is a real conflict and must fail the run, loudly.
 */
export function insertStatement(shape: TableShape): string {
  const table = quoteTable(shape.schema, shape.name);
  const columns = shape.columns.map(quoteIdent);
  const exists = shape.primaryKey.length ? `\n where not exists (select 1 from ${table} x where ${pkMatch(shape, 'x', 'r')})` : '';
  return (
    `insert into ${table} (${columns.join(', ')})${shape.identityAlways.length ? ' overriding system value' : ''}\n` +
    `select ${columns.map((c) => `r.${c}`).join(', ')}\n` +
    `  from jsonb_array_elements($1::jsonb) as e(value)\n` +
    ` cross join lateral jsonb_populate_record(null::${table}, e.value) as r${exists}`
  );
}

/** Removes rows that are still exactly as kept (`to_jsonb` of the live row equals it): undo of an insert. */
export function deleteStatement(shape: TableShape): string {
  const table = quoteTable(shape.schema, shape.name);
  return (
    `delete from ${table} as t\n` +
    ` using jsonb_array_elements($1::jsonb) as e(value)\n` +
    ` cross join lateral jsonb_populate_record(null::${table}, e.value) as r\n` +
    ` where ${pkMatch(shape, 't', 'r')} and to_jsonb(t) = e.value`
  );
}

/** Sets rows back to `old` where they are still exactly `new`: undo of an update. */
export function updateStatement(shape: TableShape): string {
  const table = quoteTable(shape.schema, shape.name);
  const settable = shape.columns.filter((c) => !shape.identityAlways.includes(c)).map(quoteIdent);
  return (
    `update ${table} as t\n` +
    `   set (${settable.join(', ')}) = row(${settable.map((c) => `o.${c}`).join(', ')})\n` +
    `  from jsonb_array_elements($1::jsonb) as e(value)\n` +
    ` cross join lateral jsonb_populate_record(null::${table}, e.value -> 'old') as o\n` +
    ` cross join lateral jsonb_populate_record(null::${table}, e.value -> 'new') as r\n` +
    ` where ${pkMatch(shape, 't', 'r')} and to_jsonb(t) = e.value -> 'new'`
  );
}

/** A foreign key emptied by ON DELETE SET NULL, set back where the row is otherwise untouched since. */
export function relinkStatement(shape: TableShape, columns: readonly string[]): string {
  const table = quoteTable(shape.schema, shape.name);
  const key = columns.map(quoteIdent);
  // json has no equality operator; compared as jsonb, as every other type by its own.
  const same = (c: string) =>
    shape.jsonColumns.includes(c)
      ? `t.${quoteIdent(c)}::jsonb is not distinct from r.${quoteIdent(c)}::jsonb`
      : `t.${quoteIdent(c)} is not distinct from r.${quoteIdent(c)}`;
  const others = shape.columns.filter((c) => !columns.includes(c)).map(same);
  return (
    `update ${table} as t\n` +
    `   set (${key.join(', ')}) = row(${key.map((c) => `r.${c}`).join(', ')})\n` +
    `  from jsonb_array_elements($1::jsonb) as e(value)\n` +
    ` cross join lateral jsonb_populate_record(null::${table}, e.value) as r\n` +
    ` where ${pkMatch(shape, 't', 'r')}\n` +
    `   and ${key.map((c) => `t.${c} is null and r.${c} is not null`).join(' and ')}` +
    others.map((c) => `\n   and ${c}`).join('')
  );
}

export function pkMatch(shape: Pick<TableShape, 'primaryKey'>, left: string, right: string): string {
  return shape.primaryKey.map((c) => `${left}.${quoteIdent(c)} = ${right}.${quoteIdent(c)}`).join(' and ');
}

/** The primary key's values of a row, as one comparable string: for de-duplicating and naming rows. */
export function primaryKeyOf(shape: Pick<TableShape, 'primaryKey'>, row: Readonly<Record<string, unknown>>): string {
  return JSON.stringify(shape.primaryKey.map((c) => row[c] ?? null));
}
