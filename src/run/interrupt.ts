/**
 * SIGINT/SIGTERM during a run: remember it, let the pipeline cancel the running query and
 * roll back, and record an `interrupted` outcome. A second signal is ignored on purpose:
 * dying half-way would leave an intent without an outcome.
 */
export interface Interrupt {
  readonly signal: NodeJS.Signals | null;
  /** Called once, on the first signal (cancels the script's running query). */
  onInterrupt(fn: () => void): void;
  dispose(): void;
}

export function watchInterrupts(): Interrupt {
  let received: NodeJS.Signals | null = null;
  const listeners: (() => void)[] = [];
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
    onInterrupt: (fn) => listeners.push(fn),
    dispose: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}
