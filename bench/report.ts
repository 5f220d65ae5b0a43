import { round } from './measure.js';

/**
 * The figures, their targets, and how they are printed. A figure that could not be
 * measured is null with a reason, never left out: a silent gap reads as a pass.
 */
export const FIGURES = {
  snapshot_speedup_vs_naive: { target: '>= 10', pass: (v: number) => v >= 10, unit: 'x' },
  snapshot_growth_10x_rows: { target: '<= 1.5', pass: (v: number) => v <= 1.5, unit: 'x' },
  guard_overhead_ratio: { target: '<= 1.25 (or guard_overhead_ms <= 150)', pass: null, unit: 'x' },
  guard_overhead_ms: { target: '<= 150 (or guard_overhead_ratio <= 1.25)', pass: null, unit: 'ms' },
  ts_script_ipc_overhead_ratio: { target: '(none)', pass: null, unit: 'x' },
  ts_script_ipc_round_trip_ms: { target: '(none)', pass: null, unit: 'ms' },
  ts_script_guarded_run_overhead_ratio: { target: '<= 1.2', pass: (v: number) => v <= 1.2, unit: 'x' },
  backup_wrapper_overhead_ratio: { target: '<= 1.10', pass: (v: number) => v <= 1.1, unit: 'x' },
  scoped_vs_full_backup_time_ratio: { target: '<= 0.1', pass: (v: number) => v <= 0.1, unit: 'x' },
  scoped_vs_full_backup_bytes_ratio: { target: '(none)', pass: null, unit: 'x' },
  parallel_full_backup_speedup: { target: '>= 1.5', pass: (v: number) => v >= 1.5, unit: 'x' },
  verify_entries_per_s: { target: '>= 5000', pass: (v: number) => v >= 5000, unit: '/s' },
  blame_10k_runs_ms: { target: '<= 2000', pass: (v: number) => v <= 2000, unit: 'ms' },
  peak_rss_mb: { target: '<= 200', pass: (v: number) => v <= 200, unit: 'MB' },
  guard_cli_vs_manual_ratio: { target: '<= 1.3', pass: (v: number) => v <= 1.3, unit: 'x' },
  snapshot_cli_vs_psql_ratio: { target: '<= 0.5', pass: (v: number) => v <= 0.5, unit: 'x' },
  // Issue 14: "snapshot and check as fast as one psql session or faster"; check after a day of cron snapshots.
  check_cli_vs_psql_ratio: { target: '<= 1', pass: (v: number) => v <= 1, unit: 'x' },
  // Start-up above `node -e 0` in the same rounds (bench/sides/startup.ts).
  cli_version_ms: { target: '<= 150 above node -e 0', pass: (v: number) => v <= 150, unit: 'ms' },
  cli_list_ms: { target: '<= 400 above node -e 0', pass: (v: number) => v <= 400, unit: 'ms' },
  ledger_oltp_overhead_ratio: { target: '<= 1.15', pass: (v: number) => v <= 1.15, unit: 'x' },
  ledger_bulk_delete_overhead_ratio: { target: '<= 1.3', pass: (v: number) => v <= 1.3, unit: 'x' },
  ledger_bulk_delete_kept_rows_overhead_ratio: { target: '<= 2.5', pass: (v: number) => v <= 2.5, unit: 'x' },
  blame_with_ledger_10k_statements_ms: { target: '<= 2000', pass: (v: number) => v <= 2000, unit: 'ms' },
  pitr_backup_overhead_ms: { target: '<= 1500', pass: (v: number) => v <= 1500, unit: 'ms' },
  pitr_vs_full_dump_time_ratio: { target: '<= 0.1', pass: (v: number) => v <= 0.1, unit: 'x' },
  // The shared evidence store (bench/sides/store.ts): one host, then 8 processes on 8 chains at once.
  evidence_store_append_per_s: { target: '>= 500', pass: (v: number) => v >= 500, unit: '/s' },
  evidence_store_8_hosts_append_per_s: { target: '(none)', pass: null, unit: '/s' },
} as const;

export type FigureName = keyof typeof FIGURES;

export class Figures {
  readonly values = new Map<FigureName, number | null>();
  readonly missing = new Map<FigureName, string>();

  set(name: FigureName, value: number): void {
    this.values.set(name, round(value, value >= 100 ? 0 : 3));
  }

  fail(name: FigureName, reason: string): void {
    this.values.set(name, null);
    this.missing.set(name, reason);
  }

  /** pass/fail per figure; the guard passes on either of its two figures, as the issue states it. */
  verdicts(): Record<FigureName, boolean | null> {
    const out = {} as Record<FigureName, boolean | null>;
    for (const name of Object.keys(FIGURES) as FigureName[]) {
      const v = this.values.get(name);
      const rule = FIGURES[name].pass as ((v: number) => boolean) | null;
      out[name] = v === null || v === undefined || !rule ? null : rule(v);
    }
    const ms = this.values.get('guard_overhead_ms');
    const ratio = this.values.get('guard_overhead_ratio');
    if (typeof ms === 'number' || typeof ratio === 'number') {
      const pass = (typeof ms === 'number' && ms <= 150) || (typeof ratio === 'number' && ratio <= 1.25);
      out.guard_overhead_ms = pass;
      out.guard_overhead_ratio = pass;
    }
    return out;
  }

  toJson(): Record<string, number | null> {
    const out: Record<string, number | null> = {};
    for (const name of Object.keys(FIGURES) as FigureName[]) out[name] = this.values.get(name) ?? null;
    return out;
  }
}

export interface ComparisonRow {
  readonly what: string;
  readonly a: string;
  readonly aMs: number;
  readonly b: string;
  readonly bMs: number;
  readonly ratio: number;
  readonly ratioMeans: string;
}

export function renderText(rows: readonly ComparisonRow[], figures: Figures, notes: readonly string[]): string {
  const lines: string[] = ['', 'Side by side (medians of alternating rounds)', ''];
  lines.push(
    table(
      ['comparison', 'side A', 'median A', 'side B', 'median B', 'ratio'],
      rows.map((r) => [r.what, r.a, ms(r.aMs), r.b, ms(r.bMs), `${r.ratio.toFixed(2)} (${r.ratioMeans})`]),
    ),
  );
  lines.push('', 'Targets', '');
  const verdicts = figures.verdicts();
  lines.push(
    table(
      ['figure', 'value', 'target', 'result'],
      (Object.keys(FIGURES) as FigureName[]).map((name) => {
        const v = figures.values.get(name);
        const shown =
          v === null || v === undefined ? `null (${figures.missing.get(name) ?? 'not measured'})` : `${v} ${FIGURES[name].unit}`;
        const verdict = verdicts[name];
        return [name, shown, FIGURES[name].target, verdict === null ? '-' : verdict ? 'PASS' : 'FAIL'];
      }),
    ),
  );
  if (notes.length) lines.push('', ...notes.map((n) => `note: ${n}`));
  return `${lines.join('\n')}\n`;
}

function ms(value: number): string {
  return value >= 10_000 ? `${(value / 1000).toFixed(1)} s` : `${value.toFixed(value < 10 ? 1 : 0)} ms`;
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
