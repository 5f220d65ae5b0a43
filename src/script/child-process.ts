import { fork, type ChildProcess } from 'node:child_process';
import { z } from '../zod.js';
import type { Logger } from '../logger.js';
import type { ChildSandbox } from './child-sandbox.js';
import type { ParentMessage } from './child/protocol.js';

/**
 * One script child: started confined, spoken to only through validated messages, and
 * always killed at the end. The child is the script's, so nothing it sends is trusted.
 * A guarded run keeps the child that read the declarations for the run (one Node start-up
 * per run); while it waits it does not keep this process alive (see `hold`).
 */
export interface ScriptChild {
  readonly pid: number | undefined;
  send(message: ParentMessage): void;
  /** Messages as they arrive; a malformed one ends the child with an error. Returns the unsubscribe. */
  onMessage(handler: (message: ChildMessageIn) => void): () => void;
  /** Where the child's stdout/stderr lines go from now on: the loader's logger, then the run's. */
  logTo(log: Logger): void;
  /**
   * Whether this process waits for the child. An idle child is let go, so a caller that fails
   * before it runs or disposes of the script still exits, and the child exits on disconnect.
   */
  hold(held: boolean): void;
  /** Resolves when the child has exited, with what stderr said last. */
  readonly exited: Promise<ChildExit>;
  kill(): void;
}

export interface ChildExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderrTail: string;
  /** Set when the process could not be started at all. */
  readonly spawnError?: Error;
}

const wireError = z.object({ name: z.string(), message: z.string() }).catchall(z.string().optional());
const childMessage = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('described'),
    scripts: z.array(z.object({ file: z.string(), ok: z.boolean(), meta: z.unknown().optional(), error: wireError.optional() })),
  }),
  z.object({ type: z.literal('query'), id: z.number().int(), query: z.object({ sql: z.string(), parameters: z.array(z.unknown()) }) }),
  z.object({
    type: z.literal('logs'),
    entries: z.array(
      z.object({
        level: z.enum(['debug', 'info', 'warn', 'error']),
        msg: z.string(),
        fields: z.record(z.string(), z.unknown()).optional(),
      }),
    ),
  }),
  z.object({ type: z.literal('done'), value: z.unknown() }),
  z.object({ type: z.literal('failed'), error: wireError }),
]);
export type ChildMessageIn = z.infer<typeof childMessage>;

const STDERR_TAIL = 4000;

export function startScriptChild(sandbox: ChildSandbox, log: Logger): ScriptChild {
  const child: ChildProcess = fork(sandbox.main, [], {
    execArgv: [...sandbox.execArgv],
    env: { ...sandbox.env },
    cwd: sandbox.cwd,
    ...(sandbox.uid !== undefined ? { uid: sandbox.uid, gid: sandbox.gid } : {}),
    // Dates, Buffers and BigInts in rows and return values survive the trip.
    serialization: 'advanced',
    // The script's own output never reaches stdout, which --json keeps to one document.
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let target = log;
  let stderrTail = '';
  target.debug('script child started', { pid: child.pid });
  forwardLines(child.stdout, (line) => target.info(line, { source: 'script stdout' }));
  forwardLines(child.stderr, (line) => {
    stderrTail = (stderrTail + line + '\n').slice(-STDERR_TAIL);
    target.warn(line, { source: 'script stderr' });
  });
  const exited = new Promise<ChildExit>((resolve) => {
    child.once('error', (spawnError) => resolve({ code: null, signal: null, stderrTail, spawnError }));
    // 'close', not 'exit': stderr is fully read by then, so the tail holds the child's last words.
    child.once('close', (code, signal) => resolve({ code, signal, stderrTail }));
  });
  return {
    pid: child.pid,
    send: (message) => {
      if (child.connected) child.send(message, (error) => error && log.debug('script child went away', { error: error.message }));
    },
    onMessage: (handler) => {
      const listener = (raw: unknown): void => {
        const parsed = childMessage.safeParse(raw);
        if (parsed.success) handler(parsed.data);
        else {
          target.error('The script process sent a malformed message; stopping it.');
          child.kill('SIGKILL');
        }
      };
      child.on('message', listener);
      return () => void child.off('message', listener);
    },
    logTo: (next) => {
      target = next;
    },
    hold: (held) => {
      for (const handle of [child, child.channel, child.stdout, child.stderr] as ({ ref?(): void; unref?(): void } | null | undefined)[]) {
        if (held) handle?.ref?.();
        else handle?.unref?.();
      }
    },
    exited,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

function forwardLines(stream: NodeJS.ReadableStream | null, emit: (line: string) => void): void {
  let buffer = '';
  stream?.setEncoding('utf8');
  stream?.on('data', (chunk: string) => {
    buffer += chunk;
    const lines = buffer.split('\n');
    buffer = lines.pop() ?? '';
    for (const line of lines) if (line) emit(line);
  });
  stream?.on('end', () => buffer && emit(buffer));
}

/** How a child that ended without a result is described to the operator. */
export function describeExit(exit: ChildExit): string {
  if (exit.spawnError) return `the script's process could not be started: ${exit.spawnError.message}`;
  const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
  const tail = exit.stderrTail.trim();
  return `the script's process ${how} before the script finished${tail ? `; its stderr ended with:\n${tail}` : ''}`;
}
