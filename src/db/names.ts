import type { TableKey } from '../records/index.js';

/**
 * Table names as users write them: `users` means `public.users`, `audit.events` names its
 * schema. A quoted part keeps dots and case: `"Weird.Schema"."Mixed Case"`.
 */
export function parseTableName(name: string): { schema: string; table: string } {
  const parts = splitQualified(name.trim());
  if (parts.length === 1) return { schema: 'public', table: parts[0]! };
  if (parts.length === 2) return { schema: parts[0]!, table: parts[1]! };
  throw new Error(`not a table name: ${name}`);
}

export function tableKey(name: string): TableKey {
  const { schema, table } = parseTableName(name);
  return `${schema}.${table}`;
}

export function keyOf(schema: string, table: string): TableKey {
  return `${schema}.${table}`;
}

/** `"a.b".c` -> ['a.b', 'c']; unquoted parts are kept as written (PostgreSQL would fold case, users rarely mean that). */
function splitQualified(name: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < name.length; i++) {
    const ch = name[i]!;
    if (ch === '"') {
      if (quoted && name[i + 1] === '"') {
        current += '"';
        i++;
      } else quoted = !quoted;
    } else if (ch === '.' && !quoted) {
      parts.push(current);
      current = '';
    } else current += ch;
  }
  parts.push(current);
  return parts;
}

/** Quote an identifier for SQL text (for the few statements that cannot take parameters). */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function quoteTable(schema: string, table: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(table)}`;
}
