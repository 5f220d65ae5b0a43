import pino from 'pino';

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

export interface LoggerOptions {
  readonly verbose?: boolean;
  readonly quiet?: boolean;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.verbose ? 'debug' : options.quiet ? 'warn' : 'info';
  // Pretty output only for a person at a terminal; pipes and cron get JSON lines.
  const pretty = process.stderr.isTTY === true;
  const base = pino(
    {
      level,
      base: undefined,
      redact: { paths: ['password', '*.password', 'connectionString', '*.connectionString'], censor: '[redacted]' },
    },
    pretty ? pino.transport({ target: 'pino-pretty', options: { destination: 2, ignore: 'time', colorize: true } }) : pino.destination(2),
  );
  const emit =
    (lvl: 'debug' | 'info' | 'warn' | 'error') =>
    (msg: string, fields?: Record<string, unknown>): void => {
      if (fields) base[lvl](fields, msg);
      else base[lvl](msg);
    };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}

/** For tests and library callers that want silence. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
