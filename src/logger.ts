import { createRequire } from 'node:module';
import type { DestinationStream, Logger as PinoLogger } from 'pino';
import { formatLogLine } from './log-line.js';
import { ownCommonJs } from './own-build.js';
import { writeAboveProgress } from './progress.js';

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

// pino is required for the first line written, not at import: many modules import
// silentLogger from here, and `safe-run --version` must not pay for a logger it never uses.
const require = createRequire(import.meta.url);

const LEVELS = ['debug', 'info', 'warn', 'error'] as const;
type LogLevel = (typeof LEVELS)[number];

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.verbose ? 'debug' : options.quiet ? 'warn' : 'info';
  const format = options.format ?? logFormatFromEnv();
  // pino (and its redaction, compiled when it is made) is made by the first line that is
  // written: `list` or `snapshot --json` write none, and need not pay for it.
  let base: PinoLogger | undefined;
  const pinoLogger = (): PinoLogger => (base ??= makePino(level, format));
  const emit = (lvl: LogLevel) => {
    if (LEVELS.indexOf(lvl) < LEVELS.indexOf(level)) return (): void => {};
    return (msg: string, fields?: Record<string, unknown>): void => {
      if (fields) pinoLogger()[lvl](fields, msg);
      else pinoLogger()[lvl](msg);
    };
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}

function makePino(level: LogLevel, format: LogFormat): PinoLogger {
  const pino = require(ownCommonJs('pino')) as typeof import('pino');
  // Human lines on a terminal or not: cron mail, CI logs and the demo are read by people.
  // JSON only when asked for, for a log shipper.
  const destination: DestinationStream = format === 'json' ? pino.destination({ dest: 2, sync: true }) : humanStderr();
  return pino.default(
    {
      level,
      base: undefined,
      redact: { paths: ['password', '*.password', 'connectionString', '*.connectionString'], censor: '[redacted]' },
    },
    destination,
  );
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
      const text = formatLogLine(line, { color });
      if (!writeAboveProgress(text)) process.stderr.write(`${text}\n`);
    },
  };
}

/** For tests and library callers that want silence. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
