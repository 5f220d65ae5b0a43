/**
 * What a TypeScript script's child does (started by ../child-process.ts): it runs under Node's
 * permission model as an unprivileged user, with no database connection and no credentials;
 * the script's `db` sends each statement to the runner over IPC. Keep its imports small;
 * every module it loads must be inside the read allow-list.
 */
import type { ScriptQueryResult } from '../gate.js';
import { definitionOf } from './evaluate.js';
import { IpcDialect } from './ipc-dialect.js';
import { kysely } from './kysely.js';
import {
  fromWireError,
  fromWireResult,
  toWireError,
  type ChildMessage,
  type Described,
  type LogEntry,
  type LogLevel,
  type ParentMessage,
  type ScriptSource,
} from './protocol.js';
import { errorMessage } from '../../errors.js';

const send = (message: ChildMessage): void => {
  flushLogs();
  process.send!(message);
};

/**
 * Log lines wait for the next message or the end of this turn of the event loop, and cross
 * as one message: a write to the channel per line cost a script that logs a line per row
 * about 16 ms a thousand lines (BENCHMARKS.md). Any other message sends them first, so the
 * runner still sees them in the order the script wrote them, before its next statement.
 */
let queuedLogs: LogEntry[] = [];

function queueLog(entry: LogEntry): void {
  if (queuedLogs.length === 0) setImmediate(flushLogs);
  queuedLogs.push(entry);
}

function flushLogs(): void {
  if (queuedLogs.length === 0) return;
  const entries = queuedLogs;
  queuedLogs = [];
  try {
    process.send!({ type: 'logs', entries } satisfies ChildMessage);
  } catch {
    // Fields that cannot cross (a function, a socket): each line again, without them where needed.
    for (const entry of entries) {
      try {
        process.send!({ type: 'logs', entries: [entry] } satisfies ChildMessage);
      } catch {
        process.send!({ type: 'logs', entries: [{ level: entry.level, msg: entry.msg }] } satisfies ChildMessage);
      }
    }
  }
}

const pending = new Map<number, { resolve: (r: ScriptQueryResult) => void; reject: (e: Error) => void }>();
let nextQueryId = 1;

function sendQuery(query: { sql: string; parameters: readonly unknown[] }): Promise<ScriptQueryResult> {
  const id = nextQueryId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    send({ type: 'query', id, query });
  });
}

/** The declarations only, as plain JSON: the parent parses them, it does not trust them. */
async function describe(script: ScriptSource): Promise<Described> {
  const { file } = script;
  try {
    const d = await definitionOf(script);
    const meta = JSON.parse(
      JSON.stringify({
        name: d?.name,
        description: d?.description,
        touches: d?.touches,
        limits: d?.limits,
        critical: d?.critical,
        ddl: d?.ddl,
        hasRun: typeof d?.run === 'function',
      }),
    ) as unknown;
    return { file, ok: true, meta };
  } catch (error) {
    return { file, ok: false, error: toWireError(error) };
  }
}

const logAt =
  (level: LogLevel) =>
  (msg: string, fields?: Record<string, unknown>): void =>
    queueLog({ level, msg: String(msg), ...(fields ? { fields } : {}) });

async function run(script: ScriptSource, args: readonly string[], dryRun: boolean): Promise<void> {
  const definition = await definitionOf(script);
  if (typeof definition?.run !== 'function') throw new Error(`Script ${script.file} does not export a script with a run function.`);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const db = new (kysely().Kysely<any>)({ dialect: new IpcDialect(sendQuery) });
  const log = { debug: logAt('debug'), info: logAt('info'), warn: logAt('warn'), error: logAt('error') };
  const value = await definition.run({ db: db as never, args: [...args], log, dryRun });
  try {
    send({ type: 'done', value });
  } catch (error) {
    throw new Error(
      `The script's return value cannot be recorded (${errorMessage(error)}); return plain data: objects, arrays, numbers, strings, dates.`,
    );
  }
}

function onMessage(message: ParentMessage): void {
  if (message.type === 'query-result' || message.type === 'query-error') {
    const waiter = pending.get(message.id);
    pending.delete(message.id);
    if (message.type === 'query-result') waiter?.resolve(fromWireResult(message.result));
    else waiter?.reject(fromWireError(message.error));
  } else if (message.type === 'describe') {
    void (async () => {
      const scripts: Described[] = [];
      for (const script of message.scripts) scripts.push(await describe(script));
      send({ type: 'described', scripts });
    })();
  } else if (message.type === 'run') {
    run(message.script, message.args, message.dryRun).catch((error: unknown) => send({ type: 'failed', error: toWireError(error) }));
  }
}

/** Listens to the runner: from main.ts, or from the child's start-up snapshot once it is started. */
export function serve(): void {
  process.on('message', onMessage);
  // The child outlives its describe, idle until the run: it must never outlive the runner that
  // holds it, whether the runner disposed of it, crashed or was killed.
  process.on('disconnect', () => process.exit(1));
  // Errors the script did not await still end the run as the script's error, not as a silent exit.
  process.on('uncaughtException', (error) => {
    send({ type: 'failed', error: toWireError(error) });
    process.exitCode = 1;
  });
  process.on('unhandledRejection', (error) => send({ type: 'failed', error: toWireError(error) }));
}
