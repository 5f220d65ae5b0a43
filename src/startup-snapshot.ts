import crypto from 'node:crypto';
import os from 'node:os';
import v8 from 'node:v8';
import pg from 'pg';
import { COMMANDS } from './commands/registry.js';
import { main } from './program.js';
import { markStartedFromSnapshot } from './startup.js';

/**
 * The CLI's entry in its V8 start-up snapshot (dist/bundle/cli.blob, made by `npm run build`,
 * used by bin/safe-run). Building runs this file once: every command's modules are loaded
 * and their top-level work done (zod's schemas, yargs, the driver), and V8 writes the heap to
 * the blob. A command then starts from that heap instead of reading, compiling and running
 * ~3 MB of JavaScript again: `safe-run snapshot` took 0.43 s and 0.37 s of CPU instead of 0.59
 * and 0.55 (BENCHMARKS.md, eighth pass).
 *
 * Whatever a module computed at load is frozen into the blob, so what depends on the moment
 * or the machine must not be computed at load, or is put right below when a command starts:
 * - the working directory, which Node (and graceful-fs) cache;
 * - pg's default user, read from USER when pg loads;
 * - signal listeners a package adds at load (proper-lockfile's exit hook): a snapshot cannot
 *   hold their handles, so they are taken off before it is written and put back at start;
 * - randomness: Node caches random bytes for randomUUID, so a UUID made while building would be
 *   the first UUID of every command. Building fails if a module makes one at load;
 * - Node's worker and fetch modules (NOT_AT_LOAD): building fails if a module loads them.
 * Dynamic `import()` does not work in a snapshot's process: the bundle resolves its own at build
 * time, and what loads from node_modules at run time is required (src/config/load.ts).
 */

const signalListeners = new Map<NodeJS.Signals, NodeJS.SignalsListener[]>();

function takeSignalListenersOff(): void {
  for (const signal of Object.keys(os.constants.signals) as NodeJS.Signals[]) {
    const listeners = process.listeners(signal);
    if (listeners.length === 0) continue;
    signalListeners.set(signal, listeners);
    process.removeAllListeners(signal);
  }
}

function putSignalListenersBack(): void {
  for (const [signal, listeners] of signalListeners) for (const listener of listeners) process.on(signal, listener);
}

function refreshWhatLoadingCached(): void {
  // chdir drops the cached directory (Node's and graceful-fs's); '.' is where the shell started us.
  process.chdir('.');
  pg.defaults.user = process.platform === 'win32' ? process.env.USERNAME : process.env.USER;
}

async function loadEverything(): Promise<void> {
  const randomUUID = crypto.randomUUID;
  crypto.randomUUID = () => {
    throw new Error('a module made a UUID while loading: it would be the same in every command started from the snapshot');
  };
  try {
    await Promise.all([import('yargs'), ...COMMANDS.map((command) => command.load())]);
  } finally {
    crypto.randomUUID = randomUUID;
  }
  // After the loads, not in a serialize callback: removing a listener closes its handle on
  // the event loop's next turn, and the snapshot is written once the loop is empty.
  takeSignalListenersOff();
  // Node's list of its own modules loaded so far (not in @types/node).
  const loaded = (process as unknown as { moduleLoadList: readonly string[] }).moduleLoadList;
  for (const [internal, why] of NOT_AT_LOAD) {
    if (loaded.includes(`NativeModule ${internal}`)) throw new Error(`${internal} was loaded while building: ${why}`);
  }
}

/** Node's own modules that break when loaded into a snapshot; load them on first use (process.getBuiltinModule). */
const NOT_AT_LOAD: readonly (readonly [string, string])[] = [
  ['internal/worker', 'a worker started from the snapshot could not read the working directory (src/report/verify-in-worker.ts)'],
  ['internal/deps/undici/undici', "Node's fetch cannot be held by a snapshot (support/build/bundle.ts, LAZY_AT_LOAD)"],
];

loadEverything().catch((error: unknown) => {
  process.stderr.write(
    `the start-up snapshot could not load the CLI: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});

v8.startupSnapshot.setDeserializeMainFunction(() => {
  refreshWhatLoadingCached();
  putSignalListenersBack();
  markStartedFromSnapshot();
  void main(process.argv.slice(2));
});
