import { usageError } from '../errors.js';

/**
 * The one duration grammar, for config timeouts and `--since` alike: a number (decimals allowed)
 * and a unit, with optional space between: `500ms`, `10s`, `1.5s`, `90m` or `90min`, `2h`, `3d`,
 * `1w`. This is the union of what the config (ms, s, min, h) and `--since` (s, m, min, h, d, w)
 * accepted before; `m` is minutes (never months), and there is no month or year unit on purpose,
 * since their length varies.
 */
const UNITS_MS = {
  ms: 1,
  s: 1000,
  m: 60_000,
  min: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
} as const;

type Unit = keyof typeof UNITS_MS;

const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|min|m|h|d|w)$/;

export const DURATION_EXAMPLES = '"500ms", "10s", "90m", "5min", "2h", "3d" or "1w"';

/** Whole milliseconds (timeouts are passed to PostgreSQL as integers), or null when `value` is not a duration. */
export function matchDurationMs(value: string): number | null {
  const match = DURATION.exec(value.trim());
  if (!match) return null;
  return Math.round(Number(match[1]) * UNITS_MS[match[2] as Unit]);
}

/** For values already validated by the config schema; anything else is the operator's typo, exit 2. */
export function parseDurationMs(value: string): number {
  const ms = matchDurationMs(value);
  if (ms === null) throw usageError(`not a duration: "${value}"`, `Write a duration such as ${DURATION_EXAMPLES}.`);
  return ms;
}
