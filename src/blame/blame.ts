import type { Config } from '../config/config.js';
import { parseTableName, tableKey } from '../db/names.js';
import { SafeRunError, usageError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { TableKey } from '../records/index.js';
import { attributeChanges, type BlameChange } from './attribute.js';
import { ExecCollector, type ExecSummary } from '../history/exec-runs.js';
import { readLiveIdentity, readLiveSnapshot } from '../history/live.js';
import type { TargetHandle } from '../db/target.js';
import { observeLive, TableObservationCollector, type TableObservation } from '../history/observations.js';
import { readLiveFacts, resolveStatus, type LiveFacts } from '../history/run-status.js';
import { RunCollector } from '../history/runs.js';
import { warnSkipped } from '../audit/read.js';
import { scanLog } from '../history/scan.js';
import { windowEvents, type WindowEvent } from './window-events.js';
import { readLedgerView, SealCollector } from '../ledger/read.js';
import { attributeToSessions } from './sessions.js';
import type { RunFacts } from './windows.js';

export interface BlameOptions {
  readonly table: string;
  readonly since: Date | null;
  /** Add the live table as the last observation ("now"). */
  readonly live: boolean;
}

/** One row of `blame --json` observations: what one signed entry (or the live database) saw. */
export interface BlameObservation {
  readonly seq: number | null;
  readonly kind: string;
  readonly ts: string;
  readonly runId: string | null;
  readonly script: string | null;
  readonly hash: string | null;
  readonly rows: number | null;
  readonly rowsKind: 'exact' | 'estimate' | null;
  readonly counters: { readonly n_tup_ins: number; readonly n_tup_upd: number; readonly n_tup_del: number } | null;
  /** What happened since the previous observation: recreated database, stats reset, … */
  readonly events: readonly WindowEvent[];
}

export interface BlameResult {
  readonly table: TableKey;
  readonly database: string | null;
  readonly observations: readonly BlameObservation[];
  readonly changes: readonly BlameChange[];
}

/** The full working set, for `report`, which needs the runs as well as the changes. */
export interface BlameAnalysis extends BlameResult {
  readonly runs: readonly RunFacts[];
  readonly execs: readonly ExecSummary[];
  readonly live: LiveFacts | null;
  /** Every table's rows in the live database, when it was read. */
  readonly current: {
    readonly at: string;
    readonly tables: Readonly<Record<TableKey, { readonly rows: number; readonly rowsKind: 'exact' | 'estimate' }>>;
  } | null;
  readonly rawObservations: readonly TableObservation[];
}

export async function blameTable(config: Config, options: BlameOptions, target: TargetHandle, log: Logger): Promise<BlameResult> {
  const a = await analyzeTable(config, options, target, log);
  return { table: a.table, database: a.database, observations: a.observations, changes: a.changes };
}

export async function analyzeTable(config: Config, options: BlameOptions, target: TargetHandle, log: Logger): Promise<BlameAnalysis> {
  const table = tableKey(options.table);
  const live = options.live ? await target.open().catch(offerNoLive) : await target.openIfPossible(log);
  const nowSnapshot = live && options.live ? await readLiveSnapshot(live, config, [table]) : null;
  const identity = nowSnapshot?.database ?? (live ? await readLiveIdentity(live) : null);
  const observed = new TableObservationCollector(table);
  const runCollector = new RunCollector();
  const execCollector = new ExecCollector();
  const sealCollector = new SealCollector();
  await scanLog(config.evidenceDir, [observed, runCollector, execCollector, sealCollector], warnSkipped(log));

  const key = identity?.key ?? observed.newestDatabaseKey;
  if (!identity && key && observed.databaseKeys.length > 1)
    log.warn('no database connected: blaming the most recently observed one', { database: key });
  const observations: TableObservation[] = key ? observed.of(key) : [];
  if (nowSnapshot) observations.push(observeLive(nowSnapshot, table));
  if (!observations.some((o) => o.table)) {
    throw usageError(
      `No observation of ${table}${key ? ` in ${key}` : ''}: it is not in any snapshot in ${config.evidenceDir}${nowSnapshot ? ' nor in the live database' : ''}.`,
      'Check the table name (schema.table; unqualified means public).',
    );
  }

  const runs = runCollector.runs.filter((r) => r.intent?.databaseKey === key);
  const facts = live && identity ? await readLiveFacts(live.db, identity, runs) : null;
  const runFacts: RunFacts[] = runs.map((run) => ({ run, status: resolveStatus(run, facts) }));
  const execs = execCollector.execs.filter((e) => e.intent.databaseKey === key);
  const names = new Map(execs.map((e) => [e.runId, e.intent.name]));
  const ledger = await readLedgerView(
    live?.db ?? null,
    config.evidenceDir,
    { key: key ?? '', oid: identity?.oid ?? null },
    sealCollector.seals,
    parseTableName(options.table),
  );
  // Blame names sessions only from copies that are the files their signed entries name.
  for (const problem of ledger.problems)
    log.warn(`${problem}: its statements are left out of this answer; \`safe-run verify --db\` names every damaged seal`);
  const changes = attributeToSessions(table, attributeChanges(table, observations, runFacts, names), ledger, runFacts);
  const scripts = new Map<string, string | null>([...names, ...runs.map((r) => [r.runId, r.intent?.script ?? null] as const)]);
  return {
    table,
    database: key,
    observations: sinceFilter(viewObservations(observations, scripts), options.since, (o) => o.ts),
    changes: options.since ? changes.filter((c) => Date.parse(c.toTs) >= options.since!.getTime()) : changes,
    runs: runFacts,
    execs,
    live: facts,
    current: nowSnapshot
      ? {
          at: nowSnapshot.takenAt,
          tables: Object.fromEntries(Object.entries(nowSnapshot.tables).map(([k, t]) => [k, { rows: t.rows, rowsKind: t.rowsKind }])),
        }
      : null,
    rawObservations: observations,
  };
}

/** A post-mortem often happens after the database is gone: say how to work without it. */
function offerNoLive(error: unknown): never {
  if (error instanceof SafeRunError)
    throw new SafeRunError(error.message, error.exitCode, `${error.hint ?? ''} Or add --no-live to work from the audit log alone.`.trim(), {
      cause: error,
    });
  throw error;
}

function viewObservations(observations: readonly TableObservation[], scripts: ReadonlyMap<string, string | null>): BlameObservation[] {
  return observations.map((o, i) => ({
    seq: o.ref.seq,
    kind: o.ref.kind,
    // The entry's own time, as describeRef and every report cell name it (not its snapshot's takenAt, a few ms earlier).
    ts: o.ref.ts,
    runId: o.ref.runId,
    script: o.ref.runId ? (scripts.get(o.ref.runId) ?? null) : null,
    hash: o.ref.hash,
    rows: o.table?.rows ?? null,
    rowsKind: o.table?.rowsKind ?? null,
    counters: o.table?.counters
      ? { n_tup_ins: o.table.counters.n_tup_ins, n_tup_upd: o.table.counters.n_tup_upd, n_tup_del: o.table.counters.n_tup_del }
      : null,
    events: i > 0 ? windowEvents(observations[i - 1]!, o) : [],
  }));
}

/** Keeps the last observation before `since` as the baseline the first change starts from. */
function sinceFilter<T>(items: readonly T[], since: Date | null, ts: (t: T) => string): T[] {
  if (!since) return [...items];
  const first = items.findIndex((t) => Date.parse(ts(t)) >= since.getTime());
  if (first === -1) return items.slice(-1);
  return items.slice(Math.max(0, first - 1));
}
