import { usageError, type SafeRunError } from '../errors.js';
import { caretAt } from '../db/caret.js';
import { charOffsets, loadParser, parseStatements, PgParseError, scanTokens, type PgNode } from './pg-parser.js';

/** One statement of a SQL text, cut where PostgreSQL's grammar cuts it. */
export interface SqlStatement {
  /** The statement's source, without the `;` that ends it. */
  readonly text: string;
  /** String index of its first character in the whole text (comments before it included). */
  readonly offset: number;
  /** 1-based line of its first non-blank character, for messages. */
  readonly line: number;
  readonly node: PgNode;
}

/**
 * The statements of a SQL text, as the server will see them. A text the grammar rejects is a
 * usage error with a caret under the place, so an operator fixes the file before anything
 * is locked.
 */
export async function splitStatements(text: string, source = 'SQL'): Promise<readonly SqlStatement[]> {
  await loadParser();
  return splitLoaded(text, source);
}

/** `splitStatements` once the parser is loaded (the policy calls it for nested bodies). */
export function splitLoaded(text: string, source: string): readonly SqlStatement[] {
  let raw;
  try {
    raw = parseStatements(text);
  } catch (error) {
    if (error instanceof PgParseError) throw syntaxError(text, source, error);
    throw error;
  }
  const toChar = charOffsets(text);
  return raw.map((s) => {
    const start = toChar(s.stmt_location ?? 0);
    const end = s.stmt_len === undefined ? text.length : toChar((s.stmt_location ?? 0) + s.stmt_len);
    const slice = text.slice(start, end);
    const lead = slice.length - slice.trimStart().length;
    return { text: slice, offset: start, line: lineAt(text, start + lead), node: s.stmt };
  });
}

export function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

function syntaxError(text: string, source: string, error: PgParseError): SafeRunError {
  const offset = error.kind === 'lexical' ? unterminatedAt(text) : syntaxErrorAt(text, error.message);
  return usageError(
    `${source} could not be parsed: ${error.message} (line ${lineAt(text, offset)})\n${caretAt(text, offset + 1)}`,
    'Fix the statement at the caret; safe-run reads the file with the PostgreSQL 17 grammar before running any of it.',
  );
}

/**
 * libpg-query 17.3.2 gives the message of a syntax error but not its position. Find it: the
 * longest prefix ending at a `;` that still parses holds only good statements, so the error is
 * in the statement after it, at the first token named by "at or near".
 */
function syntaxErrorAt(text: string, message: string): number {
  const tokens = scanTokens(text);
  const toChar = charOffsets(text);
  const semicolons = tokens.filter((t) => t.text === ';');
  let from = 0;
  for (let k = semicolons.length - 1; k >= 0; k--) {
    const end = semicolons[k]!.end;
    if (parses(text.slice(0, toChar(end)))) {
      from = end;
      break;
    }
  }
  const rest = tokens.filter((t) => t.start >= from && !t.tokenName.endsWith('COMMENT'));
  const near = /at or near "(.*)"$/s.exec(message)?.[1];
  const hit = near === undefined ? undefined : rest.find((t) => t.text.toLowerCase() === near.toLowerCase());
  // "at end of input": the last token, which is where the grammar gave up.
  return toChar((hit ?? rest[rest.length - 1])?.start ?? from);
}

function parses(text: string): boolean {
  try {
    parseStatements(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * An unterminated string, quoted identifier, dollar quote or comment: the lexer fails for
 * every prefix that holds its opening and succeeds for the prefix just before it. Only
 * characters that can open one are candidates, tried from the end.
 */
function unterminatedAt(text: string): number {
  for (let i = text.length - 1; i >= 0; i--) {
    if (!`'"$/`.includes(text[i]!)) continue;
    try {
      scanTokens(text.slice(0, i));
      return i;
    } catch {
      // still inside the unterminated token
    }
  }
  return 0;
}
