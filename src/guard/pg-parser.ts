import { createRequire } from 'node:module';
import { errorMessage } from '../errors.js';

/**
 * PostgreSQL's own lexer and grammar (libpg_query 17, compiled to WASM), behind three small
 * functions. libpg-query 17.3.2 is the last 17.x release that still exports the PL/pgSQL
 * parser, and its JavaScript wrapper has quirks this file absorbs so the policy never sees them:
 * - a successful result whose JSON merely contains the word "ERROR" (`select 'ERROR'`) is
 *   thrown as an Error whose message is the result: we take the result back;
 * - a lexer error ("unterminated quoted string") is not recognised as an error and reaches
 *   JSON.parse, which throws a SyntaxError that has lost the text: we report it as a lexical error;
 * - positions are byte offsets into the UTF-8 text: `charOffsets` turns them into string indexes.
 */

/** A node of the parse tree as libpg_query's JSON gives it: `{ NodeType: { ...fields } }`. */
export type PgNode = Readonly<Record<string, unknown>>;

export interface RawStatement {
  readonly stmt: PgNode;
  /** Byte offset into the parsed text; absent for the first statement. */
  readonly stmt_location?: number;
  /** Length in bytes; absent for the last statement (it runs to the end of the text). */
  readonly stmt_len?: number;
}

export interface ScanToken {
  /** Byte offsets. */
  readonly start: number;
  readonly end: number;
  readonly text: string;
  readonly tokenName: string;
}

/** Why libpg_query could not read a text: grammar (with the token it names) or lexer. */
export class PgParseError extends Error {
  constructor(
    message: string,
    readonly kind: 'syntax' | 'lexical',
  ) {
    super(message);
    this.name = 'PgParseError';
  }
}

/** The emscripten module inside libpg-query: its exported C functions and string helpers. */
interface PgQueryWasm {
  lengthBytesUTF8(text: string): number;
  stringToUTF8(text: string, pointer: number, maxBytes: number): void;
  UTF8ToString(pointer: number): string;
  _malloc(bytes: number): number;
  _free(pointer: number): void;
  _wasm_free_string(pointer: number): void;
  _wasm_parse_query(pointer: number): number;
  _wasm_parse_plpgsql(pointer: number): number;
  _wasm_scan(pointer: number): number;
}
let wasm: PgQueryWasm | undefined;
let loaded: Promise<void> | undefined;

/**
 * The WASM module compiles once per process; every parse waits for it. It is loaded here,
 * not at the top: compiling the WASM is work a command that never parses SQL (`--help`,
 * `list` from the cache, `show`) should not pay for. Its emscripten module is required
 * directly: the package's index also loads 5 MB of protobuf code for `deparse`, which
 * safe-run never calls (~150 ms of CPU per run).
 */
export function loadParser(): Promise<void> {
  loaded ??= (async () => {
    const factory = createRequire(import.meta.url)('libpg-query/wasm/libpg-query.js') as () => Promise<PgQueryWasm>;
    wasm = await factory();
  })();
  return loaded;
}

/**
 * loadParser, then one parse of the statement kinds maintenance scripts send. V8 compiles
 * WebAssembly lazily, each function on its first call and on the calling thread: the first
 * parse took about 30 ms against 1-3 for the next. A run calls this while pg_dump runs
 * (run/pipeline.ts), so that the script's first statement does not pay it inside its transaction.
 */
export async function warmParser(): Promise<void> {
  await loadParser();
  parseStatements(WARM_UP);
}

const WARM_UP = [
  "select a.b, count(*) from s.t a left join u on u.id::text = coalesce(a.p->>'k', a.q) where a.k = $1 and a.id in ($2, $3) group by 1 order by 1 limit 10",
  'insert into t (a, b) values ($1, default) on conflict do nothing returning a',
  'update t set a = a + 1 where b is null and c between 1 and 2',
  'delete from t where c <= now() - interval $$1 day$$',
].join(';\n');

function parser(): PgQueryWasm {
  if (!wasm) throw new Error('safe-run: the SQL parser is used before loadParser() finished');
  return wasm;
}

export function parseStatements(text: string): readonly RawStatement[] {
  const result = call(() => callWasm('_wasm_parse_query', text)) as { stmts?: RawStatement[] };
  return result.stmts ?? [];
}

/** The PL/pgSQL functions of a `CREATE FUNCTION`/`CREATE PROCEDURE`/`DO` statement text. */
export function parsePlpgsqlFunctions(text: string): readonly PgNode[] {
  const result = call(() => callWasm('_wasm_parse_plpgsql', text)) as { plpgsql_funcs?: PgNode[] };
  return result.plpgsql_funcs ?? [];
}

export function scanTokens(text: string): readonly ScanToken[] {
  return (call(() => callWasm('_wasm_scan', text)) as { tokens?: ScanToken[] }).tokens ?? [];
}

/**
 * libpg-query 17.3.2's own parseSync, parsePlPgSQLSync and scanSync (wasm/index.cjs), step
 * for step and check for check, so `call` below absorbs the same quirks.
 */
function callWasm(fn: '_wasm_parse_query' | '_wasm_parse_plpgsql' | '_wasm_scan', text: string): unknown {
  const m = parser();
  const bytes = m.lengthBytesUTF8(text) + 1;
  const textPointer = m._malloc(bytes);
  let resultPointer = 0;
  try {
    m.stringToUTF8(text, textPointer, bytes);
    resultPointer = m[fn](textPointer);
    const result = m.UTF8ToString(resultPointer);
    if (result.startsWith('syntax error') || result.startsWith('deparse error') || result.includes('ERROR')) throw new Error(result);
    return JSON.parse(result);
  } finally {
    m._free(textPointer);
    if (resultPointer) m._wasm_free_string(resultPointer);
  }
}

function call<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof SyntaxError) throw new PgParseError('unterminated quoted string, comment or identifier', 'lexical');
    const message = errorMessage(error);
    if (message.startsWith('{')) return JSON.parse(message) as T;
    throw new PgParseError(message, 'syntax');
  }
}

/** String index of every byte offset of `text` in UTF-8 (one past the end included). */
export function charOffsets(text: string): (byteOffset: number) => number {
  // Nearly every statement is ASCII, where a byte is a character: the gate maps every
  // statement a script sends, and one with thousands of parameters is tens of kilobytes.
  if (Buffer.byteLength(text, 'utf8') === text.length)
    return (byteOffset) => (byteOffset >= 0 ? Math.min(byteOffset, text.length) : text.length);
  const byteToChar: number[] = [];
  let chars = 0;
  for (const ch of text) {
    const bytes = utf8Length(ch.codePointAt(0)!);
    for (let i = 0; i < bytes; i++) byteToChar.push(chars);
    chars += ch.length;
  }
  byteToChar.push(chars);
  return (byteOffset) => byteToChar[Math.min(byteOffset, byteToChar.length - 1)] ?? chars;
}

/** Bytes of one code point in UTF-8; a lone surrogate is written as U+FFFD, three bytes, as Buffer does. */
function utf8Length(codePoint: number): number {
  if (codePoint < 0x80) return 1;
  if (codePoint < 0x800) return 2;
  return codePoint < 0x10000 ? 3 : 4;
}
