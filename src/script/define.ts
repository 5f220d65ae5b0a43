import type { Transaction } from 'kysely';
import type { Logger } from '../logger.js';
import type { Operation } from '../records/index.js';

/**
 * What a script receives. `db` is typed as a transaction but lives in the script's own
 * process: each statement it compiles is sent to the runner, checked and run on the guarded
 * transaction, so everything it does is measured. `db.transaction()` throws (the runner owns
 * the transaction); use savepoints.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface ScriptContext<DB = any> {
  readonly db: Transaction<DB>;
  /** The words after `--` on the command line. */
  readonly args: readonly string[];
  readonly log: Logger;
  /** True under --dry-run: the transaction will be rolled back whatever the script does. */
  readonly dryRun: boolean;
}

/**
 * A maintenance script and its declared blast radius. Table names are `table` (public) or
 * `schema.table`. Anything not declared in `touches` is forbidden; `truncate` and `ddl`
 * must be declared explicitly.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface ScriptDefinition<DB = any> {
  readonly name: string;
  readonly description: string;
  readonly touches: Readonly<Record<string, readonly Operation[]>>;
  readonly limits?: Readonly<Record<string, Partial<Record<Operation, number>>>>;
  /** Tables that must never be emptied or dropped beyond the configured percentage by this script. */
  readonly critical?: readonly string[];
  /**
   * DDL beyond the declared tables (functions, views, roles, grants...). Undeclared, any change
   * to the system catalogs outside pg_temp is a violation; `ddl` in `touches` covers one table.
   */
  readonly ddl?: boolean;
  /** Whatever it returns is recorded in the outcome and shown in the summary. */
  run(context: ScriptContext<DB>): Promise<unknown>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function defineScript<DB = any>(definition: ScriptDefinition<DB>): ScriptDefinition<DB> {
  return definition;
}
