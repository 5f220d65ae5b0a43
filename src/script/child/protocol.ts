/**
 * The messages between the runner and a TypeScript script's child process. The child is
 * untrusted: the parent validates everything it receives (see ../child-messages.ts), and
 * nothing here carries a handle, only plain structured-clone data.
 */
import type { ScriptQuery, ScriptQueryResult } from '../gate.js';

/** A PostgreSQL or script error as plain data: pg's fields survive the trip both ways. */
export interface WireError {
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
  readonly code?: string;
  readonly detail?: string;
  readonly hint?: string;
  readonly position?: string;
  readonly severity?: string;
  readonly where?: string;
  readonly schema?: string;
  readonly table?: string;
  readonly column?: string;
  readonly constraint?: string;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** One line of the script's `log`, as it wrote it. */
export interface LogEntry {
  readonly level: LogLevel;
  readonly msg: string;
  readonly fields?: Record<string, unknown>;
}

/**
 * A script's source as the parent read (and hashed) it. The child evaluates this text, never
 * the file, so the code that runs is the code the intent recorded.
 */
export interface ScriptSource {
  readonly file: string;
  readonly source: string;
}

/**
 * Parent -> child. `describe` reads declarations; `run` runs one script, in the child that
 * described it (its module is reused) or in a fresh one; then query answers.
 */
export type ParentMessage =
  | { readonly type: 'describe'; readonly scripts: readonly ScriptSource[] }
  | { readonly type: 'run'; readonly script: ScriptSource; readonly args: readonly string[]; readonly dryRun: boolean }
  | { readonly type: 'query-result'; readonly id: number; readonly result: WireQueryResult }
  | { readonly type: 'query-error'; readonly id: number; readonly error: WireError };

/** One script's declarations as the child read them, before the parent has checked them. */
export type Described =
  | { readonly file: string; readonly ok: true; readonly meta: unknown }
  | { readonly file: string; readonly ok: false; readonly error: WireError };

/** Child -> parent. */
export type ChildMessage =
  | { readonly type: 'described'; readonly scripts: readonly Described[] }
  | { readonly type: 'query'; readonly id: number; readonly query: ScriptQuery }
  | { readonly type: 'logs'; readonly entries: readonly LogEntry[] }
  | { readonly type: 'done'; readonly value: unknown }
  | { readonly type: 'failed'; readonly error: WireError };

/**
 * A statement's rows by column: the names once, then each column's values in row order.
 * Structured clone copies an object's keys with every row, and a script that reads tens of
 * thousands of rows waited about twice as long for them that way (BENCHMARKS.md). The rows
 * of one statement share their columns: pg builds every row from the statement's fields.
 */
export interface WireQueryResult {
  readonly columns: readonly string[];
  readonly values: readonly (readonly unknown[])[];
  readonly numAffectedRows?: number;
}

export function toWireResult(result: ScriptQueryResult): WireQueryResult {
  const columns = result.rows.length ? Object.keys(result.rows[0]!) : [];
  const values = columns.map((column) => result.rows.map((row) => row[column]));
  return { columns, values, ...(result.numAffectedRows !== undefined ? { numAffectedRows: result.numAffectedRows } : {}) };
}

export function fromWireResult(wire: WireQueryResult): ScriptQueryResult {
  const count = wire.values[0]?.length ?? 0;
  const rows = new Array<Record<string, unknown>>(count);
  for (let i = 0; i < count; i++) {
    const row: Record<string, unknown> = {};
    for (let c = 0; c < wire.columns.length; c++) row[wire.columns[c]!] = wire.values[c]![i];
    rows[i] = row;
  }
  return { rows, ...(wire.numAffectedRows !== undefined ? { numAffectedRows: wire.numAffectedRows } : {}) };
}

const PG_FIELDS = ['code', 'detail', 'hint', 'position', 'severity', 'where', 'schema', 'table', 'column', 'constraint'] as const;

/** Any thrown value as plain data. Node's ERR_ACCESS_DENIED names the path in `resource`, not in its message. */
export function toWireError(error: unknown): WireError {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error) };
  const e = error as Error & Record<string, unknown>;
  let message = e.message;
  if (e.code === 'ERR_ACCESS_DENIED') {
    message = `${message} (${String(e.permission ?? 'permission')} denied${e.resource ? ` for ${String(e.resource)}` : ''}: a TypeScript script may read only its own directory)`;
  }
  const wire: Record<string, unknown> = { name: e.name, message, ...(e.stack ? { stack: e.stack } : {}) };
  for (const field of PG_FIELDS) if (typeof e[field] === 'string') wire[field] = e[field];
  return wire as unknown as WireError;
}

/** A WireError as an Error again, with pg's fields on it, so callers handle it like a pg error. */
export function fromWireError(wire: WireError, prefix = ''): Error {
  const error = new Error(`${prefix}${wire.message}`) as Error & Record<string, unknown>;
  error.name = wire.name;
  for (const field of PG_FIELDS) if (wire[field] !== undefined) error[field] = wire[field];
  return error;
}
