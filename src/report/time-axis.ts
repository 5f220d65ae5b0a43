/**
 * Tick marks for the chart's time axis. A post-mortem's history spans seconds (a test, a
 * demo) or months (cron snapshots), so the step is picked from round intervals to give
 * about six ticks, and the label shows only what changes between ticks.
 */
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const STEPS = [
  SECOND,
  2 * SECOND,
  5 * SECOND,
  10 * SECOND,
  15 * SECOND,
  30 * SECOND,
  MINUTE,
  2 * MINUTE,
  5 * MINUTE,
  10 * MINUTE,
  15 * MINUTE,
  30 * MINUTE,
  HOUR,
  2 * HOUR,
  3 * HOUR,
  6 * HOUR,
  12 * HOUR,
  DAY,
  2 * DAY,
  7 * DAY,
  14 * DAY,
  30 * DAY,
  90 * DAY,
  365 * DAY,
];

export interface TimeTick {
  readonly ms: number;
  readonly label: string;
}

export function timeTicks(fromMs: number, toMs: number, wanted = 6): TimeTick[] {
  const span = Math.max(toMs - fromMs, 1);
  const step = STEPS.find((s) => span / s <= wanted) ?? STEPS[STEPS.length - 1]!;
  const ticks: TimeTick[] = [];
  for (let ms = Math.ceil(fromMs / step) * step; ms <= toMs; ms += step) ticks.push({ ms, label: tickLabel(ms, step, span) });
  return ticks;
}

/** UTC, like every timestamp in the log. */
function tickLabel(ms: number, step: number, span: number): string {
  const iso = new Date(ms).toISOString();
  if (step >= DAY) return iso.slice(0, 10);
  if (span >= DAY) return `${iso.slice(5, 10)} ${iso.slice(11, 16)}`;
  return step >= MINUTE ? iso.slice(11, 16) : iso.slice(11, 19);
}

/** Round a count axis up to 1, 2 or 5 times a power of ten, so the grid lines read easily. */
export function niceCeiling(n: number): number {
  if (n <= 1) return 1;
  const power = 10 ** Math.floor(Math.log10(n));
  const m = [1, 2, 5, 10].find((f) => f * power >= n)!;
  return m * power;
}
