import { usageError } from '../errors.js';

/**
 * `--since` as operators type it: an ISO date or timestamp ("2025-11-14", "2025-11-14T00:20Z")
 * or a duration back from now ("90m", "2h", "3d", "1w"). Relative forms are what a person
 * reaches for in the middle of an incident, so they are first-class.
 */
const UNITS_MS: Readonly<Record<string, number>> = {
  s: 1000,
  m: 60_000,
  min: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

export function parseSince(value: string, now: Date = new Date()): Date {
  const trimmed = value.trim();
  const relative = /^(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)$/.exec(trimmed);
  if (relative) return new Date(now.getTime() - Number(relative[1]) * UNITS_MS[relative[2]!]!);
  // Only strings that look like dates: Date.parse accepts "1" or "May" and would surprise.
  if (/^\d{4}-\d{2}-\d{2}/.test(trimmed)) {
    const parsed = Date.parse(trimmed);
    if (!Number.isNaN(parsed)) return new Date(parsed);
  }
  throw usageError(`--since: not a date or a duration: "${value}"`, 'Use an ISO date ("2025-11-14", "2025-11-14T00:20:00Z") or a duration back from now ("30m", "2h", "3d", "1w").');
}

/** For the yargs layer: undefined stays undefined. */
export function optionalSince(value: string | undefined): Date | null {
  return value === undefined ? null : parseSince(value);
}
