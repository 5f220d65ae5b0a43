import type { ScriptRunContext } from './gate.js';
import { describeExit, type ChildMessageIn, type ScriptChild } from './child-process.js';
import { fromWireError, toWireError, toWireResult, type ScriptSource } from './child/protocol.js';

/**
 * The runner's side of a TypeScript script's run: each statement the child sends goes to
 * `context.gate` (the only door to the database) and its rows or error go back. Whatever
 * way the child ends other than `done` is the script's error, and the caller rolls back.
 *
 * The hang rule: with no statement in flight, the script must send its next statement or
 * finish within `idleTimeoutMs` (the config's statementTimeout) of its last answer. A
 * statement in flight is bounded by PostgreSQL's own statement_timeout instead.
 */
export interface ChildRunOptions {
  readonly idleTimeoutMs: number;
}

/** Runs `script` (the source the parent hashed) in `child`, which this call consumes: it is killed at the end. */
export function runInChild(
  child: ScriptChild,
  script: ScriptSource,
  context: ScriptRunContext,
  options: ChildRunOptions,
): Promise<unknown> {
  child.logTo(context.log);
  child.hold(true);
  return new Promise<unknown>((resolve, reject) => {
    let settled = false;
    const inFlight = new Set<Promise<void>>();
    let idleTimer: NodeJS.Timeout | undefined;

    const finish = (outcome: { value: unknown } | { error: Error }): void => {
      if (settled) return;
      settled = true;
      clearTimeout(idleTimer);
      context.signal.removeEventListener('abort', onAbort);
      child.kill();
      // Statements already handed to the gate finish before the runner measures.
      void Promise.allSettled([...inFlight]).then(() => ('value' in outcome ? resolve(outcome.value) : reject(outcome.error)));
    };
    const armIdleTimer = (): void => {
      clearTimeout(idleTimer);
      if (inFlight.size) return;
      idleTimer = setTimeout(
        () =>
          finish({
            error: new Error(
              `The script sent no statement and did not finish within ${options.idleTimeoutMs} ms of its last one (statementTimeout); it was stopped.`,
            ),
          }),
        options.idleTimeoutMs,
      );
    };
    const onAbort = (): void => finish({ error: new Error('The script was stopped: the run was interrupted.') });

    const serveQuery = (message: Extract<ChildMessageIn, { type: 'query' }>): void => {
      const served = context
        .gate(message.query)
        .then(
          (result) => child.send({ type: 'query-result', id: message.id, result: toWireResult(result) }),
          (error: unknown) => child.send({ type: 'query-error', id: message.id, error: toWireError(error) }),
        )
        .finally(() => {
          inFlight.delete(served);
          if (!settled) armIdleTimer();
        });
      inFlight.add(served);
      clearTimeout(idleTimer);
    };

    child.onMessage((message) => {
      if (settled) return;
      if (message.type === 'query') serveQuery(message);
      else if (message.type === 'logs') for (const line of message.entries) context.log[line.level](line.msg, line.fields);
      else if (message.type === 'done') finish({ value: message.value });
      else if (message.type === 'failed') finish({ error: fromWireError(message.error as never) });
    });
    void child.exited.then((exit) => finish({ error: new Error(describeExit(exit)) }));
    if (context.signal.aborted) return onAbort();
    context.signal.addEventListener('abort', onAbort);
    child.send({ type: 'run', script, args: context.args, dryRun: context.dryRun });
    armIdleTimer();
  });
}
