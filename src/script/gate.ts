import { CompiledQuery } from 'kysely';
import type { Db } from '../db/connection.js';
import type { Logger } from '../logger.js';

/**
 * The only door from a script to the database. A script (SQL or TypeScript, in process or
 * in its child) never holds the runner's connection or transaction: it hands each compiled
 * statement to the gate, and the runner checks it against the statement policy and runs it
 * on the guarded session. Nothing the runner measures with is reachable through it.
 */
export interface ScriptQuery {
  readonly sql: string;
  readonly parameters: readonly unknown[];
}

export interface ScriptQueryResult {
  readonly rows: readonly Record<string, unknown>[];
  /** INSERT/UPDATE/DELETE/MERGE: rows the statement affected. */
  readonly numAffectedRows?: number;
}

export type QueryGate = (query: ScriptQuery) => Promise<ScriptQueryResult>;

/** What the runner hands a loaded script to run it. */
export interface ScriptRunContext {
  readonly gate: QueryGate;
  /** The words after `--` on the command line. */
  readonly args: readonly string[];
  readonly log: Logger;
  readonly dryRun: boolean;
  /** Aborted on SIGINT/SIGTERM or when the runner gives up on the script. */
  readonly signal: AbortSignal;
}

/**
 * A gate straight onto a connection or transaction, with no policy: the runner wraps it.
 * It only forwards compiled SQL, so a handle typed with any database's tables will do.
 */
export function directGate(db: Pick<Db, 'executeQuery'>): QueryGate {
  return async (query) => {
    const compiled: CompiledQuery<Record<string, unknown>> = CompiledQuery.raw(query.sql, [...query.parameters]);
    const result = await db.executeQuery(compiled);
    const affected = result.numAffectedRows;
    return { rows: result.rows, ...(affected !== undefined ? { numAffectedRows: Number(affected) } : {}) };
  };
}
