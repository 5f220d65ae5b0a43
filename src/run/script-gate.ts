import type { Db } from '../db/connection.js';
import type { Logger } from '../logger.js';
import { directGate, type QueryGate } from '../script/gate.js';
import type { LoadedScript } from '../script/load.js';
import type { Interrupt } from './interrupt.js';
import type { Violation } from './types.js';

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
}

export interface GateOptions {
  readonly args: readonly string[];
  readonly log: Logger;
  readonly dryRun: boolean;
  readonly interrupt: Interrupt;
}

export async function runThroughGate(script: LoadedScript, trx: Db, options: GateOptions): Promise<ScriptRun> {
  const refusals: Violation[] = [];
  const abort = new AbortController();
  options.interrupt.onInterrupt(() => abort.abort());
  const direct = directGate(trx);
  let open = true;
  const gate: QueryGate = async (query) => {
    if (!open) throw new Error('safe-run: the script has already returned; its transaction is no longer open to it');
    return direct(query);
  };
  let output: unknown;
  let error: unknown = null;
  try {
    // Interim `db`: TypeScript scripts still run in process until the child runner lands.
    const context = { gate, db: trx, args: options.args, log: options.log, dryRun: options.dryRun, signal: abort.signal };
    output = await script.run(context);
  } catch (e) {
    error = e;
  } finally {
    open = false;
  }
  return { output, error, refusals };
}
