/**
 * The shape of the generated data, as a pure function of (tables, rows) so that the full
 * dataset and its one-tenth twin have exactly the same tables and foreign keys.
 *
 * Production databases are lopsided: a few event/log tables hold most rows, and many
 * small tables (settings, lookups, per-account detail) hold the rest. So about 90% of the
 * rows go to a handful of large tables and the remaining 10% are spread unevenly over the
 * small ones. Small tables form groups of eight under a root, with chains up to three deep
 * so that ON DELETE CASCADE closures are transitive; the large tables hang off the roots,
 * as events hang off accounts.
 */
export interface TableSpec {
  readonly name: string;
  readonly rows: number;
  readonly parent: string | null;
  readonly onDelete: 'cascade' | 'set null';
  readonly large: boolean;
}

const GROUP = 8;

export function planTables(tables: number, rows: number): TableSpec[] {
  if (tables < 3) throw new Error('--tables must be at least 3');
  // At the default 10M rows every large table is above the default exact-count threshold
  // (1,000,000), so it is estimated; a table exactly at the threshold would make the
  // snapshot's cost depend on a rounding of reltuples.
  const largeShares = tables >= 40 ? [0.38, 0.25, 0.15, 0.12] : [0.55, 0.35];
  const smallCount = tables - largeShares.length;
  const smallRows = rows * (1 - largeShares.reduce((a, b) => a + b, 0));
  // 1/(k+1) weights: a few small tables of tens of thousands of rows, most of a few thousand.
  const weights = Array.from({ length: smallCount }, (_, i) => 1 / ((i % 25) + 1));
  const weightSum = weights.reduce((a, b) => a + b, 0);

  const name = (i: number): string => `gen_${String(i).padStart(3, '0')}`;
  const specs: TableSpec[] = [];
  for (let i = 0; i < smallCount; i++) {
    const pos = i % GROUP;
    const root = i - pos;
    const parent = pos === 0 ? null : pos <= 3 ? name(i - 1) : name(root);
    specs.push({
      name: name(i),
      rows: Math.max(1, Math.round((smallRows * weights[i]!) / weightSum)),
      parent,
      // Every fifth child keeps its rows and is rewritten instead: SET NULL is in the closure too.
      onDelete: i % 5 === 0 ? 'set null' : 'cascade',
      large: false,
    });
  }
  largeShares.forEach((share, j) => {
    const root = Math.min(j * GROUP, smallCount - 1) - (Math.min(j * GROUP, smallCount - 1) % GROUP);
    specs.push({
      name: name(smallCount + j),
      rows: Math.max(1, Math.round(rows * share)),
      parent: name(root),
      onDelete: 'cascade',
      large: true,
    });
  });
  return specs;
}

/** The demo's users/oidc_models grown with the dataset, so the cleanup has real work. */
export interface SessionPlan {
  readonly users: number;
  readonly sessions: number;
  /** Sessions the cleanup deletes each round: half with a missing or inactive user, half expired. */
  readonly deletable: number;
}

export function planSessions(rows: number): SessionPlan {
  const sessions = Math.max(200, Math.round(rows / 100));
  // Under the script's declared limit of 10,000 deletes, or the guard would stop the run.
  return { users: Math.max(100, Math.round(rows / 200)), sessions, deletable: Math.min(5000, Math.round(sessions / 20)) };
}
