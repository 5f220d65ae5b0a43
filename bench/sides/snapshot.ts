import { sql } from 'kysely';
import { backupScope } from '../../src/backup/scope.js';
import type { Config } from '../../src/config/config.js';
import { createDb, type Db } from '../../src/db/connection.js';
import { loadScriptFile } from '../../src/script/load.js';
import { takeSnapshot } from '../../src/snapshot/take.js';
import { SNAPSHOT_CONNECTIONS } from '../../src/run/pipeline.js';
import type { TableKey } from '../../src/records/index.js';
import type { BenchDatabase } from '../data.js';
import { alternate, timeMs, type SideSamples } from '../measure.js';
import { cleanupScriptPath } from '../workspace.js';

/**
 * The snapshots a guarded run of the cleanup takes, with the options the pipeline gives
 * them: the pre-snapshot counts the script's cascade closure and the critical tables
 * exactly and reads everything else from the catalog and statistics; the post-snapshot
 * takes those counts from the transaction (which counted them in-transaction for its
 * guards) and reads only the catalog and statistics.
 */
export interface SnapshotPlan {
  readonly exactTables: ReadonlySet<TableKey>;
}

export async function cleanupSnapshotPlan(db: Db, config: Config): Promise<SnapshotPlan> {
  const script = await loadScriptFile(cleanupScriptPath);
  const closure = await backupScope(db, Object.keys(script.touches), 'touched');
  return { exactTables: new Set([...closure, ...script.critical, ...Object.keys(config.criticalTables), ...config.exactTables]) };
}

function snapshotOnce(db: Db, url: string, plan: SnapshotPlan, knownCounts?: Readonly<Record<TableKey, number>>) {
  return takeSnapshot(db, {
    ...(knownCounts ? { knownCounts } : { exactTables: plan.exactTables }),
    // What a guarded run gives its snapshots.
    connections: SNAPSHOT_CONNECTIONS,
    url: new URL(url),
  });
}

/** The pipeline's pair: the post reuses the exact counts (in a run, the transaction's own). */
async function prePost(db: Db, url: string, plan: SnapshotPlan): Promise<void> {
  const { snapshot } = await snapshotOnce(db, url, plan);
  const exact = Object.entries(snapshot.tables).filter(([, t]) => t.rowsKind === 'exact');
  await snapshotOnce(db, url, plan, Object.fromEntries(exact.map(([k, t]) => [k, t.rows])));
}

/** What the incident's investigator did by hand: list the tables, count(*) each one, one after the other. */
async function naiveCounts(db: Db): Promise<number> {
  const { rows } = await sql<{ schema: string; name: string }>`
    select schemaname as schema, relname as name from pg_stat_user_tables order by 1, 2`.execute(db);
  let total = 0;
  for (const t of rows) {
    const r = await sql<{ n: number }>`select count(*)::int8 as n from ${sql.table(`${t.schema}.${t.name}`)}`.execute(db);
    total += r.rows[0]!.n;
  }
  return total;
}

export interface SnapshotComparison {
  readonly safeRun: SideSamples;
  readonly naive: SideSamples;
  /** The same two snapshots with nothing counted exactly: the catalog, identity and WAL reads alone, the floor. */
  readonly catalogOnly: SideSamples;
  readonly exactTables: number;
}

/** Pre + post snapshot against two rounds of exact counts (pre and post), on warm pools. */
export async function compareSnapshotWithNaive(bench: BenchDatabase, plan: SnapshotPlan, rounds: number): Promise<SnapshotComparison> {
  const db = createDb(bench.url, { maxConnections: 3, applicationName: 'safe-run-bench' });
  try {
    const none: SnapshotPlan = { exactTables: new Set() };
    const [safeRun, naive, catalogOnly] = await alternate(
      [
        {
          name: 'safe-run pre+post snapshot',
          run: () => timeMs(() => prePost(db, bench.url, plan)),
        },
        {
          name: 'count(*) every table, twice',
          run: () =>
            timeMs(async () => {
              await naiveCounts(db);
              await naiveCounts(db);
            }),
        },
        {
          name: 'snapshot without exact counts, twice',
          run: () =>
            timeMs(async () => {
              await snapshotOnce(db, bench.url, none);
              await snapshotOnce(db, bench.url, none);
            }),
        },
      ],
      { rounds, label: 'snapshot vs naive' },
    );
    return { safeRun: safeRun!, naive: naive!, catalogOnly: catalogOnly!, exactTables: plan.exactTables.size };
  } finally {
    await db.destroy();
  }
}

/** The same snapshot on the full dataset and on its one-tenth twin (same tables, a tenth of the rows). */
export interface GrowthComparison {
  readonly full: SideSamples;
  readonly tenth: SideSamples;
  /** Rows the snapshot counted exactly on each side: only the cleanup's closure and critical tables. */
  readonly exactRows: { readonly full: number; readonly tenth: number };
}

async function exactRowsCounted(db: Db, url: string, plan: SnapshotPlan): Promise<number> {
  const { snapshot } = await snapshotOnce(db, url, plan);
  return Object.values(snapshot.tables).reduce((sum, t) => sum + (t.rowsKind === 'exact' ? t.rows : 0), 0);
}

export async function compareSnapshotGrowth(
  full: BenchDatabase,
  tenth: BenchDatabase,
  plan: SnapshotPlan,
  rounds: number,
): Promise<GrowthComparison> {
  const fullDb = createDb(full.url, { maxConnections: 3, applicationName: 'safe-run-bench' });
  const tenthDb = createDb(tenth.url, { maxConnections: 3, applicationName: 'safe-run-bench' });
  try {
    const [a, b] = await alternate(
      [
        { name: `snapshot, ${full.rows.toLocaleString('en')} rows`, run: () => timeMs(() => snapshotOnce(fullDb, full.url, plan)) },
        { name: `snapshot, ${tenth.rows.toLocaleString('en')} rows`, run: () => timeMs(() => snapshotOnce(tenthDb, tenth.url, plan)) },
      ],
      { rounds, label: 'snapshot growth' },
    );
    const exactRows = { full: await exactRowsCounted(fullDb, full.url, plan), tenth: await exactRowsCounted(tenthDb, tenth.url, plan) };
    return { full: a!, tenth: b!, exactRows };
  } finally {
    await fullDb.destroy();
    await tenthDb.destroy();
  }
}
