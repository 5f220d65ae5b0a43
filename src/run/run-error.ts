import { caretAt } from '../db/caret.js';
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
