/**
 * Rows as `to_jsonb` gives them, into JavaScript and back, without changing a number.
 * JSON.parse turns 9007199254740993 (a bigint key), 12345678901234567890.0123456789 (a numeric),
 * 2.50 (a numeric's scale) and -0 into the nearest double, and a row put back from that is
 * another row. A number whose literal a double does not give back exactly is kept as an
 * ExactNumber and written back as that same literal.
 */

/** Cannot occur in a value from PostgreSQL: text and jsonb hold no NUL character. */
const MARK = '\u0000n:';
const MARKED = /"\\u0000n:([-+.0-9eE]+)"/g;
const NUMBER_CHAR = /[-+.0-9eE]/;

export class ExactNumber {
  constructor(readonly literal: string) {}

  /** JSON.stringify and canonicalize see a marked string: one key for one number; stringifyExact writes the literal. */
  toJSON(): string {
    return MARK + this.literal;
  }
}

/** JSON.parse, with every number a double would change kept as an ExactNumber. */
export function parseExact(text: string): unknown {
  return JSON.parse(markInexactNumbers(text), (_key, value: unknown) =>
    typeof value === 'string' && value.startsWith(MARK) ? new ExactNumber(value.slice(MARK.length)) : value,
  );
}

/** JSON.stringify, with every ExactNumber written as its literal. */
export function stringifyExact(value: unknown): string {
  return JSON.stringify(value).replace(MARKED, '$1');
}

/** The JSON text with each number literal that does not survive Number() turned into a marked string. */
function markInexactNumbers(text: string): string {
  let out = '';
  let copied = 0;
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
      i++;
    } else if (c === '-' || (c >= '0' && c <= '9')) {
      let j = i + 1;
      while (j < text.length && NUMBER_CHAR.test(text[j]!)) j++;
      const literal = text.slice(i, j);
      if (String(Number(literal)) !== literal) {
        out += text.slice(copied, i) + JSON.stringify(MARK + literal);
        copied = j;
      }
      i = j;
    } else i++;
  }
  return copied === 0 ? text : out + text.slice(copied);
}
