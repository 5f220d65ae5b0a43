import { createRequire } from 'node:module';
import type { DestinationStream, Logger as PinoLogger } from 'pino';
import { formatLogLine } from './log-line.js';

/**
 * The one logger shape the library code sees. Commands receive it; nothing in src/ calls
 * console.log. Logs go to stderr so that `--json` keeps stdout to a single document.
 */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export type LogFormat = 'human' | 'json';

export interface LoggerOptions {
  readonly verbose?: boolean;
  readonly quiet?: boolean;
  /** Default: SAFE_RUN_LOG_FORMAT, else human lines. */
  readonly format?: LogFormat;
}

// pino is required on the first createLogger, not at import: many modules import silentLogger
// from here, and `safe-run --version` must not pay for a logger it never creates.
const require = createRequire(import.meta.url);

export function createLogger(options: LoggerOptions = {}): Logger {
  const pino = require('pino') as typeof import('pino');
  const level = options.verbose ? 'debug' : options.quiet ? 'warn' : 'info';
  const format = options.format ?? logFormatFromEnv();
  // Human lines on a terminal or not: cron mail, CI logs and the demo are read by people.
  // JSON only when asked for, for a log shipper.
  const destination: DestinationStream = format === 'json' ? pino.destination({ dest: 2, sync: true }) : humanStderr();
  const base: PinoLogger = pino.default(
    {
      level,
      base: undefined,
      redact: { paths: ['password', '*.password', 'connectionString', '*.connectionString'], censor: '[redacted]' },
    },
    destination,
  );
  const emit =
    (lvl: 'debug' | 'info' | 'warn' | 'error') =>
    (msg: string, fields?: Record<string, unknown>): void => {
      if (fields) base[lvl](fields, msg);
      else base[lvl](msg);
    };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}

function logFormatFromEnv(): LogFormat {
  return process.env.SAFE_RUN_LOG_FORMAT?.trim().toLowerCase() === 'json' ? 'json' : 'human';
}

/**
 * pino still serialises (and redacts) every entry; this stream turns each JSON line back
 * into one line a person reads. Synchronous, so a line is out before the process exits.
 */
function humanStderr(): DestinationStream {
  const color = process.stderr.isTTY === true && !process.env.NO_COLOR;
  return {
    write(line: string): void {
      process.stderr.write(`${formatLogLine(line, { color })}\n`);
    },
  };
}

/** For tests and library callers that want silence. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
