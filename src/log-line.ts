/**
 * One pino JSON entry as one line for a person:
 * `12:01:03 info  backup verified  tables=3 bytes=1.2MB`. The time is local (the clock on
 * the operator's wall); fields keep pino's names so a line maps back to --log-format json.
 */
const LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };
const LEVEL_COLORS: Record<string, string> = { debug: '2', warn: '33', error: '31', fatal: '31' };
/** pino's own keys: shown in the line's head, never as fields. */
const OWN_KEYS = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'v']);

export interface LogLineOptions {
  readonly color?: boolean;
}

export function formatLogLine(json: string, options: LogLineOptions = {}): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.trimEnd();
  }
  const level = LEVELS[Number(entry.level)] ?? String(entry.level);
  const time = typeof entry.time === 'number' ? clock(new Date(entry.time)) : '';
  const fields = Object.entries(entry)
    .filter(([key, value]) => !OWN_KEYS.has(key) && value !== undefined)
    .map(([key, value]) => `${key}=${fieldValue(key, value)}`);
  const paint = (code: string | undefined, text: string): string => (options.color && code ? `\x1b[${code}m${text}\x1b[0m` : text);
  const head = `${paint('2', time)} ${paint(LEVEL_COLORS[level], level.padEnd(5))} ${String(entry.msg ?? '')}`;
  return fields.length ? `${head}  ${fields.join(' ')}` : head;
}

function clock(date: Date): string {
  return [date.getHours(), date.getMinutes(), date.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}

function fieldValue(key: string, value: unknown): string {
  if (typeof value === 'number' && /(^|[a-z])(bytes|Bytes)$/.test(key)) return formatBytes(value);
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value);
}

/** 1.2MB, 340kB, 12B: short enough for a log line, exact enough to compare two runs. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n}B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)}kB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)}MB`;
  return `${(n / 1024 ** 3).toFixed(2)}GB`;
}
