import { DURATION_EXAMPLES, matchDurationMs } from '../config/duration.js';
import { usageError } from '../errors.js';

/**
 * `--since` as operators type it: an ISO date or timestamp ("2025-11-14", "2025-11-14T00:20Z")
 * or a duration back from now, in the config's duration grammar (config/duration.ts: "90m",
 * "2h", "3d", "1w"). Relative forms are what a person reaches for in the middle of an incident,
 * so they are first-class.
 */
export function parseSince(value: string, now: Date = new Date()): Date {
  const trimmed = value.trim();
  const relativeMs = matchDurationMs(trimmed);
  if (relativeMs !== null) return new Date(now.getTime() - relativeMs);
  // Only strings that look like dates: Date.parse accepts "1" or "May" and would surprise.
  if (/^\d{4}-\d{2}-\d{2}/.test(trimmed)) {
    const parsed = Date.parse(trimmed);
    if (!Number.isNaN(parsed)) return new Date(parsed);
  }
  throw usageError(
    `--since: not a date or a duration: "${value}"`,
    `Use an ISO date ("2025-11-14", "2025-11-14T00:20:00Z") or a duration back from now (${DURATION_EXAMPLES}).`,
  );
}

/** For the yargs layer: undefined stays undefined. */
export function optionalSince(value: string | undefined): Date | null {
  return value === undefined ? null : parseSince(value);
}
