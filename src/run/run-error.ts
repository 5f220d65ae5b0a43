import type { LoadedScript } from '../script/load.js';
import type { RunError } from '../records/index.js';

/**
 * A script's error as the operator needs it: PostgreSQL's code, detail and hint, and for
 * SQL scripts the line with a caret under the failing position.
 */
export function toRunError(error: unknown, script?: Pick<LoadedScript, 'sqlText'>): RunError {
  const e = error as { message?: string; code?: string; detail?: string; hint?: string; position?: string };
  const position = e.position ? Number(e.position) : undefined;
  let message = e.message ?? String(error);
  if (position && script?.sqlText) message += `\n${caretAt(script.sqlText, position)}`;
  return {
    message,
    ...(e.code ? { code: e.code } : {}),
    ...(e.detail ? { detail: e.detail } : {}),
    ...(e.hint ? { hint: e.hint } : {}),
    ...(position ? { position } : {}),
  };
}

/** The line holding `position` (characters, 1-based) with a caret under it. */
export function caretAt(text: string, position: number): string {
  const before = text.slice(0, position - 1);
  const lineStart = before.lastIndexOf('\n') + 1;
  const lineEnd = text.indexOf('\n', lineStart);
  const lineNo = before.split('\n').length;
  const line = text.slice(lineStart, lineEnd === -1 ? undefined : lineEnd);
  const prefix = `line ${lineNo}: `;
  return `${prefix}${line}\n${' '.repeat(prefix.length + position - 1 - lineStart)}^`;
}
