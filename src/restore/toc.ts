import type { TocEntry } from '../backup/archive.js';
import type { RestoreTable } from './target-tables.js';

/**
 * The `--use-list` of a data-only restore into existing tables: the session settings, then
 * each table's TABLE DATA entry in the order given. pg_restore restores a list in the order
 * it is written, so parents can go before children and every foreign key holds row by row.
 */
const SETTINGS = new Set(['ENCODING', 'STDSTRINGS', 'SEARCHPATH']);

export function dataEntries(toc: readonly TocEntry[], ordered: readonly RestoreTable[]): TocEntry[] {
  // Names print unquoted, so `schema name owner` is matched by prefix (as backup/archive.ts does).
  const dataOf = (t: RestoreTable) => toc.filter((e) => e.type === 'TABLE DATA' && e.rest.startsWith(`${t.schema} ${t.name} `));
  return [...toc.filter((e) => SETTINGS.has(e.type)), ...ordered.flatMap(dataOf)];
}
