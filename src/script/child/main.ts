/**
 * The entry of a TypeScript script's child process (started by ../child-process.ts). It
 * runs under Node's permission model as an unprivileged user, with no database connection
 * and no credentials: the script's `db` sends each statement to the runner over IPC. Keep
 * its imports small; every module it loads must be inside the read allow-list.
 */
import { Kysely } from 'kysely';
import { fileURLToPath } from 'node:url';
import type { ScriptDefinition } from '../define.js';
import type { ScriptQueryResult } from '../gate.js';
import { IpcDialect } from './ipc-dialect.js';
import { fromWireError, toWireError, type ChildMessage, type Described, type LogLevel, type ParentMessage } from './protocol.js';

const send = (message: ChildMessage): void => {
  process.send!(message);
};

const pending = new Map<number, { resolve: (r: ScriptQueryResult) => void; reject: (e: Error) => void }>();
let nextQueryId = 1;

function sendQuery(query: { sql: string; parameters: readonly unknown[] }): Promise<ScriptQueryResult> {
  const id = nextQueryId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    send({ type: 'query', id, query });
  });
}

async function importDefinition(file: string): Promise<Partial<ScriptDefinition>> {
  const [{ createJiti }, { transform }] = await Promise.all([import('jiti'), import('sucrase')]);
  const jiti = createJiti(import.meta.url, {
    moduleCache: false,
    // The child may not write anywhere: jiti transpiles in memory.
    fsCache: false,
    // sucrase strips types and turns imports into requires in a few ms; jiti's own babel
    // transform costs half a second per child, most of a short script's run.
    transform: (options) => ({ code: transform(options.source, { transforms: ['typescript', 'imports'], filePath: options.filename }).code }),
    // A script imports 'safe-run' (and kysely) and must get this very installation.
    alias: { 'safe-run': fileURLToPath(new URL('../../index.js', import.meta.url)) },
  });
  return (await jiti.import(file, { default: true })) as Partial<ScriptDefinition>;
}

/** The declarations only, as plain JSON: the parent parses them, it does not trust them. */
async function describe(file: string): Promise<Described> {
  try {
    const d = await importDefinition(file);
    const meta = JSON.parse(JSON.stringify({ name: d?.name, description: d?.description, touches: d?.touches, limits: d?.limits, critical: d?.critical, ddl: d?.ddl, hasRun: typeof d?.run === 'function' })) as unknown;
    return { file, ok: true, meta };
  } catch (error) {
    return { file, ok: false, error: toWireError(error) };
  }
}

const logAt =
  (level: LogLevel) =>
  (msg: string, fields?: Record<string, unknown>): void => {
    try {
      send({ type: 'log', level, msg: String(msg), ...(fields ? { fields } : {}) });
    } catch {
      send({ type: 'log', level, msg: String(msg) });
    }
  };

async function run(file: string, args: readonly string[], dryRun: boolean): Promise<void> {
  const definition = await importDefinition(file);
  if (typeof definition?.run !== 'function') throw new Error(`Script ${file} does not export a script with a run function.`);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const db = new Kysely<any>({ dialect: new IpcDialect(sendQuery) });
  const log = { debug: logAt('debug'), info: logAt('info'), warn: logAt('warn'), error: logAt('error') };
  const value = await definition.run({ db: db as never, args: [...args], log, dryRun });
  try {
    send({ type: 'done', value });
  } catch (error) {
    throw new Error(`The script's return value cannot be recorded (${(error as Error).message}); return plain data: objects, arrays, numbers, strings, dates.`);
  }
}

function onMessage(message: ParentMessage): void {
  if (message.type === 'query-result' || message.type === 'query-error') {
    const waiter = pending.get(message.id);
    pending.delete(message.id);
    if (message.type === 'query-result') waiter?.resolve(message.result);
    else waiter?.reject(fromWireError(message.error));
  } else if (message.type === 'describe') {
    void (async () => {
      const scripts: Described[] = [];
      for (const file of message.files) scripts.push(await describe(file));
      send({ type: 'described', scripts });
    })();
  } else if (message.type === 'run') {
    run(message.file, message.args, message.dryRun).catch((error: unknown) => send({ type: 'failed', error: toWireError(error) }));
  }
}

process.on('message', onMessage);
// Errors the script did not await still end the run as the script's error, not as a silent exit.
process.on('uncaughtException', (error) => {
  send({ type: 'failed', error: toWireError(error) });
  process.exitCode = 1;
});
process.on('unhandledRejection', (error) => send({ type: 'failed', error: toWireError(error) }));
