/**
 * SIGINT/SIGTERM during a run: remember it, let the pipeline cancel the running query and
 * roll back, and record an `interrupted` outcome. A second signal is ignored on purpose:
 * dying half-way would leave an intent without an outcome.
 */
export interface Interrupt {
  readonly signal: NodeJS.Signals | null;
  /** Aborted on the first signal: for child processes (pg_dump) that must stop with the run. */
  readonly abortSignal: AbortSignal;
  /** Called once, on the first signal (cancels the script's running query). */
  onInterrupt(fn: () => void): void;
  dispose(): void;
}

export function watchInterrupts(): Interrupt {
  let received: NodeJS.Signals | null = null;
  const abort = new AbortController();
  const listeners: (() => void)[] = [abort.abort.bind(abort)];
  const handler = (signal: NodeJS.Signals): void => {
    if (received) return;
    received = signal;
    for (const fn of listeners) fn();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    get signal() {
      return received;
    },
    abortSignal: abort.signal,
    onInterrupt: (fn) => listeners.push(fn),
    dispose: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}
