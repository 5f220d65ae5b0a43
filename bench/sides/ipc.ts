import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Transaction } from 'kysely';
import { createDb } from '../../src/db/connection.js';
import { silentLogger } from '../../src/logger.js';
import { directGate } from '../../src/script/gate.js';
import { loadScriptFile } from '../../src/script/load.js';
import { importScriptInProcess } from '../in-process-script.js';
import type { BenchDatabase } from '../data.js';
import { alternate, timeMs, type SideSamples } from '../measure.js';
import { cleanupScriptPath } from '../workspace.js';
import { expectedDeletes, reseedSessions } from './guard.js';

/**
 * What moving a TypeScript script into its confined child costs: the session cleanup run
 * through the child (declarations read and the run in the same child, every statement
 * over IPC) against the same module imported and run in this process, both in one plain
 * transaction with no guard. Then the per-statement round trip: N trivial statements
 * through the child, as the script sees them.
 */
export interface IpcComparison {
  readonly child: SideSamples;
  readonly inProcess: SideSamples;
  readonly roundTripMs: number;
}

const ROUND_TRIP_STATEMENTS = 200;

const PING_SCRIPT = `import { defineScript, sql } from 'safe-run';
export default defineScript({ name: 'ping', description: 'round trips', touches: {},
  async run({ db, args }) {
    const started = performance.now();
    for (let i = 0; i < Number(args[0]); i++) await sql\`select 1\`.execute(db);
    return performance.now() - started;
  } });
`;

async function inTransaction(url: string, fn: (trx: Trx) => Promise<unknown>): Promise<unknown> {
  const db = createDb(url, { maxConnections: 1, applicationName: 'safe-run-bench-ipc' });
  try {
    return await db.transaction().execute(fn);
  } finally {
    await db.destroy();
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Trx = Transaction<any>;

const context = (trx: Trx) => ({ gate: directGate(trx), args: [], log: silentLogger, dryRun: false, signal: new AbortController().signal });

async function viaChild(url: string, file: string): Promise<unknown> {
  const script = await loadScriptFile(file);
  return inTransaction(url, (trx) => script.run(context(trx)));
}

async function inProcess(url: string, file: string): Promise<unknown> {
  const definition = await importScriptInProcess(file);
  return inTransaction(url, (trx) => definition.run({ db: trx, args: [], log: silentLogger, dryRun: false }));
}

export async function compareChildWithInProcess(bench: BenchDatabase, rounds: number): Promise<IpcComparison> {
  const expected = expectedDeletes(bench);
  const checked = (out: unknown): void => {
    const deleted = (out as { deleted?: number }).deleted;
    if (deleted !== expected) throw new Error(`cleanup deleted ${deleted}, expected ${expected}`);
  };
  const [child, local] = await alternate(
    [
      { name: 'cleanup in its child (IPC)', run: () => timeMs(async () => checked(await viaChild(bench.url, cleanupScriptPath))) },
      { name: 'cleanup in process', run: () => timeMs(async () => checked(await inProcess(bench.url, cleanupScriptPath))) },
    ],
    { rounds, label: 'script child', before: () => reseedSessions(bench) },
  );
  return { child: child!, inProcess: local!, roundTripMs: await measureRoundTrip(bench.url) };
}

/** One statement through the child and back, database included, timed by the script itself (no start-up in it). */
async function measureRoundTrip(url: string): Promise<number> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'safe-run-bench-ping-'));
  // The child may run as nobody: it must be able to read the script.
  chmodSync(dir, 0o755);
  const file = path.join(dir, 'ping.ts');
  writeFileSync(file, PING_SCRIPT);
  try {
    const script = await loadScriptFile(file);
    const elapsed = (await inTransaction(url, (trx) => script.run({ ...context(trx), args: [String(ROUND_TRIP_STATEMENTS)] }))) as number;
    return elapsed / ROUND_TRIP_STATEMENTS;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
