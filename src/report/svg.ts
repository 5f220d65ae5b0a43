import type { ChartModel, RunMark } from './chart.js';
import { escapeHtml } from './escape.js';
import { niceCeiling, timeTicks } from './time-axis.js';

/**
 * The chart as inline SVG: no script, no font or stylesheet from elsewhere, so the report
 * stays one file that opens offline and prints. Colours come from the page's CSS classes
 * (html.ts), which keeps the legend and the marks in step.
 */
const WIDTH = 960;
const HEIGHT = 320;
/** Run labels sit in lanes above the plot, so neighbours do not print over each other. */
const LANES = 3;
const LANE_HEIGHT = 15;
const PLOT = { left: 64, right: WIDTH - 20, top: 22 + LANES * LANE_HEIGHT, bottom: HEIGHT - 36 };
/** Beyond this many runs only the ones that changed the table carry a label; every run keeps its mark and tooltip. */
const MAX_LABELS = 12;

export function renderChartSvg(chart: ChartModel): string {
  const times = [...chart.points.map((p) => p.ts), ...chart.runs.flatMap((r) => [r.start, r.end])].map(Date.parse);
  const [t0, t1] = padRange(Math.min(...times), Math.max(...times));
  const yMax = niceCeiling(Math.max(1, ...chart.points.map((p) => p.rows ?? 0)));
  const x = (ts: string | number): number =>
    PLOT.left + ((typeof ts === 'number' ? ts : Date.parse(ts)) - t0) * ((PLOT.right - PLOT.left) / (t1 - t0));
  const y = (rows: number): number => PLOT.bottom - (rows / yMax) * (PLOT.bottom - PLOT.top);
  const title = `Rows of ${chart.table} over time`;
  return [
    `<svg class="chart" viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img" aria-labelledby="chart-title chart-desc" xmlns="http://www.w3.org/2000/svg">`,
    `<title id="chart-title">${escapeHtml(title)}</title>`,
    `<desc id="chart-desc">${escapeHtml(describe(chart))}</desc>`,
    `<rect class="plot" x="${PLOT.left}" y="${PLOT.top}" width="${PLOT.right - PLOT.left}" height="${PLOT.bottom - PLOT.top}"/>`,
    ...chart.outside.map((w) =>
      outsideBand(x(w.from), x(w.to), `${w.concurrent ? 'another session, during a run' : 'outside any run'}: ${w.label}`),
    ),
    ...yGrid(yMax, y),
    ...xAxis(t0, t1, x),
    ...runMarks(chart.runs, x),
    countLine(chart, x, y),
    ...chart.points.map((p) =>
      p.rows === null
        ? ''
        : `<circle class="point${p.estimate ? ' estimate' : ''}" cx="${f(x(p.ts))}" cy="${f(y(p.rows))}" r="4"><title>${escapeHtml(
            `${p.label} at ${p.ts}: ${p.rows} rows${p.estimate ? ' (estimate)' : ''}`,
          )}</title></circle>`,
    ),
    '</svg>',
  ]
    .filter(Boolean)
    .join('\n');
}

/** One line for screen readers and for the text-only reader of the file. */
function describe(chart: ChartModel): string {
  const last = chart.points[chart.points.length - 1];
  return `${chart.points.length} observations, ${chart.runs.length} guarded runs, ${chart.outside.length} change(s) outside any run; now ${last?.rows ?? 'none'} rows.`;
}

function padRange(from: number, to: number): [number, number] {
  const span = to - from || 2000;
  return [from - span * 0.04, to + span * 0.04];
}

function outsideBand(x0: number, x1: number, label: string): string {
  const width = Math.max(x1 - x0, 3);
  return [
    `<g class="outside"><rect x="${f(x0)}" y="${PLOT.top}" width="${f(width)}" height="${PLOT.bottom - PLOT.top}"/>`,
    `<text x="${f(x0 + width / 2)}" y="${PLOT.bottom - 8}" text-anchor="${anchorFor(x0 + width / 2)}">${escapeHtml(label)}</text></g>`,
  ].join('');
}

function yGrid(yMax: number, y: (rows: number) => number): string[] {
  // Whole rows only: a grid line at 2.5 rows would be a number no table ever had.
  const step = Math.max(1, niceCeiling(yMax / 5));
  const ticks = Array.from({ length: Math.floor(yMax / step) + 1 }, (_, i) => i * step);
  return ticks.map(
    (rows) =>
      `<g class="grid"><line x1="${PLOT.left}" x2="${PLOT.right}" y1="${f(y(rows))}" y2="${f(y(rows))}"/><text x="${PLOT.left - 8}" y="${f(y(rows) + 4)}" text-anchor="end">${rows.toLocaleString('en-US')}</text></g>`,
  );
}

function xAxis(t0: number, t1: number, x: (ms: number) => number): string[] {
  return [
    ...timeTicks(t0, t1).map(
      (t) =>
        `<g class="tick"><line x1="${f(x(t.ms))}" x2="${f(x(t.ms))}" y1="${PLOT.bottom}" y2="${PLOT.bottom + 5}"/><text x="${f(x(t.ms))}" y="${PLOT.bottom + 18}" text-anchor="middle">${t.label}</text></g>`,
    ),
    `<text class="axis-caption" x="${PLOT.right}" y="${HEIGHT - 4}" text-anchor="end">time (UTC)</text>`,
  ];
}

function runMarks(runs: readonly RunMark[], x: (ts: string) => number): string[] {
  const labelled = new Set(runs.length <= MAX_LABELS ? runs : runs.filter((r) => r.changedTable).slice(-MAX_LABELS));
  let lane = 0;
  return runs.map((r) => {
    const x0 = x(r.start);
    const x1 = Math.max(x(r.end), x0 + 2);
    const tooltip = `<title>${escapeHtml(`${r.label}: run ${r.runId}, ${r.start} to ${r.end}`)}</title>`;
    const band = `<rect class="span" x="${f(x0)}" y="${PLOT.top}" width="${f(x1 - x0)}" height="${PLOT.bottom - PLOT.top}"/>`;
    const edge = `<line x1="${f(x1)}" x2="${f(x1)}" y1="${PLOT.top}" y2="${PLOT.bottom}"/>`;
    let label = '';
    if (labelled.has(r)) {
      const ly = 14 + (lane++ % LANES) * LANE_HEIGHT;
      label = `<line class="leader" x1="${f(x1)}" x2="${f(x1)}" y1="${ly + 3}" y2="${PLOT.top}"/><text x="${f(x1)}" y="${ly}" text-anchor="${anchorFor(x1)}">${escapeHtml(r.label)}</text>`;
    }
    return `<g class="run ${r.kind}" data-run-id="${escapeHtml(r.runId)}">${tooltip}${band}${edge}${label}</g>`;
  });
}

/** Labels near either edge grow inwards instead of off the picture. */
function anchorFor(x: number): string {
  if (x < PLOT.left + 120) return 'start';
  if (x > PLOT.right - 120) return 'end';
  return 'middle';
}

/** The count line breaks where the table did not exist. */
function countLine(chart: ChartModel, x: (ts: string) => number, y: (rows: number) => number): string {
  const segments: string[][] = [[]];
  for (const p of chart.points) {
    if (p.rows === null) segments.push([]);
    else segments[segments.length - 1]!.push(`${f(x(p.ts))},${f(y(p.rows))}`);
  }
  return segments
    .filter((s) => s.length > 1)
    .map((s) => `<polyline class="count" points="${s.join(' ')}"/>`)
    .join('');
}

function f(n: number): string {
  return n.toFixed(1);
}
