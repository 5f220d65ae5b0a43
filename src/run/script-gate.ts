import { asScriptStatement, type Db } from '../db/connection.js';
import { ExitCode, SafeRunError, errorMessage } from '../errors.js';
import { refusedStatements } from '../guard/statement-policy.js';
import type { Logger } from '../logger.js';
import { directGate, type QueryGate } from '../script/gate.js';
import type { LoadedScript } from '../script/load.js';
import type { Interrupt } from './interrupt.js';
import type { Violation } from '../records/index.js';

/**
 * The script's side of the transaction: it gets a gate, never the transaction. Every
 * statement passes the statement policy first; a refused one fails in the script and is
 * recorded as a violation, so a script that catches the error and goes on is still rolled
 * back. Once the script has returned the gate is shut: nothing it left behind (a timer, a
 * dangling promise) can run a statement while the runner measures.
 */
export interface ScriptRun {
  readonly output: unknown;
  readonly error: unknown;
  readonly refusals: readonly Violation[];
  /**
   * The rows the script's statements reported changing, as each returned: after a failure
   * the transaction is aborted and cannot be measured, and this is what it had done.
   */
  readonly rowsAffected: number;
}

export interface GateOptions {
  readonly args: readonly string[];
  readonly log: Logger;
  readonly dryRun: boolean;
  readonly interrupt: Interrupt;
  readonly trust: 'role' | 'superuser';
}

/** Judged exactly as a `.sql` file is; text the parser cannot read is refused too (it fails closed). */
async function refusalOf(text: string, trust: 'role' | 'superuser'): Promise<Violation | null> {
  let refusals;
  try {
    refusals = await refusedStatements(text, 'A statement the script sent', { refuseDynamic: trust === 'superuser' });
  } catch (error) {
    return { object: text.trim().slice(0, 200), rule: 'refused-statement', detail: `safe-run could not read it: ${errorMessage(error)}` };
  }
  const first = refusals[0];
  return first ? { object: first.statement.text.trim().slice(0, 200), rule: 'refused-statement', detail: first.reason } : null;
}

export async function runThroughGate(script: LoadedScript, trx: Db, options: GateOptions): Promise<ScriptRun> {
  const refusals: Violation[] = [];
  const abort = new AbortController();
  options.interrupt.onInterrupt(() => abort.abort());
  const direct = directGate(trx);
  let open = true;
  let rowsAffected = 0;
  const gate: QueryGate = async (query) => {
    if (!open) throw new Error('safe-run: the script has already returned; its transaction is no longer open to it');
    const refused = await refusalOf(query.sql, options.trust);
    if (refused) {
      refusals.push(refused);
      throw new SafeRunError(
        `safe-run refused a statement the script sent: ${refused.detail}\n  statement: ${refused.object}`,
        ExitCode.guardViolation,
        'The run is rolled back. Change the script and run it again.',
      );
    }
    const result = await asScriptStatement(() => direct(query));
    rowsAffected += result.numAffectedRows ?? 0;
    return result;
  };
  let output: unknown;
  let error: unknown = null;
  try {
    output = await script.run({ gate, args: options.args, log: options.log, dryRun: options.dryRun, signal: abort.signal });
  } catch (e) {
    error = e;
  } finally {
    open = false;
  }
  return { output, error, refusals, rowsAffected };
}
