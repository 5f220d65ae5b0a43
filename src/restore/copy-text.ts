/**
 * The text format of COPY, as `pg_restore -f -` prints a table's data: a header
 * `COPY schema.table (col, "Col 2") FROM stdin;`, one line per row with tab-separated
 * fields, `\N` for NULL, backslash escapes, and `\.` at the end.
 */
export interface CopyBlock {
  readonly columns: readonly string[];
  /** Each field as the column type's text input, or null. */
  readonly rows: readonly (readonly (string | null)[])[];
}

export function parseCopyBlocks(text: string): CopyBlock[] {
  const blocks: CopyBlock[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (!line.startsWith('COPY ') || !line.endsWith(' FROM stdin;')) continue;
    const columns = copyColumns(line);
    const rows: (string | null)[][] = [];
    for (i++; i < lines.length && lines[i] !== '\\.'; i++) rows.push(lines[i]!.split('\t').map(unescapeField));
    blocks.push({ columns, rows });
  }
  return blocks;
}

/** The column list of a COPY header: the last parenthesised list, identifiers quoted where needed. */
function copyColumns(header: string): string[] {
  const body = header.slice(0, -' FROM stdin;'.length);
  // Walk from the start so a quoted table name holding "(" cannot be mistaken for the list.
  let i = 'COPY '.length;
  let quoted = false;
  for (; i < body.length; i++) {
    const ch = body[i]!;
    if (ch === '"') quoted = !quoted;
    else if (ch === '(' && !quoted) break;
  }
  const list = body.slice(i + 1, body.lastIndexOf(')'));
  const columns: string[] = [];
  let current = '';
  quoted = false;
  for (let j = 0; j < list.length; j++) {
    const ch = list[j]!;
    if (ch === '"') {
      if (quoted && list[j + 1] === '"') {
        current += '"';
        j++;
      } else quoted = !quoted;
    } else if (ch === ',' && !quoted) {
      columns.push(current);
      current = '';
    } else if (ch === ' ' && !quoted) {
      continue;
    } else current += ch;
  }
  if (current || list.length) columns.push(current);
  return columns;
}

const ESCAPES: Readonly<Record<string, string>> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\' };

function unescapeField(field: string): string | null {
  if (field === '\\N') return null;
  // COPY TO (what pg_restore prints) never writes octal or hex escapes, only these and \\.
  return field.includes('\\') ? field.replace(/\\(.)/gs, (_, ch: string) => ESCAPES[ch] ?? ch) : field;
}
