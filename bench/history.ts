import { ulid } from 'ulid';
import { readRawEntries } from '../src/audit/read.js';
import type { EntryKind } from '../src/audit/types.js';
import type { RunIntentBody, RunOutcomeBody, RunPostBody, Snapshot, TableState } from '../src/records/index.js';

/**
 * A long, plausible history of guarded runs, cloned from one real run's entries (real
 * snapshots, real backup record, real timings) with the numbers moved forward run by run:
 * the cleanup deletes a few sessions, new sessions arrive between runs, users sign up now
 * and then, and once the users table is emptied outside any run and seeded again, as in the
 * incident. That gives blame observations, run attributions and "outside" windows to
 * work through, and entries of the size real runs write.
 */
export interface RunTemplate {
  readonly intent: RunIntentBody;
  readonly outcome: RunOutcomeBody;
  readonly post: RunPostBody;
}

export async function readRunTemplate(evidenceDir: string): Promise<RunTemplate> {
  const found: Partial<Record<EntryKind, unknown>> = {};
  for await (const entry of readRawEntries(evidenceDir)) {
    if (entry.kind === 'run.intent' || entry.kind === 'run.outcome' || entry.kind === 'run.post') found[entry.kind] = entry.body;
  }
  if (!found['run.intent'] || !found['run.outcome'] || !found['run.post']) {
    throw new Error(`the template run left no intent/outcome/post triple in ${evidenceDir}`);
  }
  return {
    intent: found['run.intent'] as RunIntentBody,
    outcome: found['run.outcome'] as RunOutcomeBody,
    post: found['run.post'] as RunPostBody,
  };
}

export interface SyntheticEntry {
  readonly kind: EntryKind;
  readonly runId: string;
  readonly ts: string;
  readonly body: unknown;
}

type Mutable<T> = { -readonly [K in keyof T]: Mutable<T[K]> };

const SESSIONS = 'public.oidc_models';
const USERS = 'public.users';
const HOUR = 3_600_000;

export class SyntheticHistory {
  private sessions: number;
  private users: number;
  private readonly counters: Record<string, { n_tup_ins: number; n_tup_del: number }>;
  private run = 0;
  private clock: number;

  constructor(
    private readonly template: RunTemplate,
    /** Runs are an hour apart, starting here. */
    startMs: number,
    /** The run before which users is emptied outside any run and seeded again. */
    private readonly incidentAt: number,
  ) {
    const tables = template.intent.snapshot.tables;
    this.sessions = tables[SESSIONS]?.rows ?? 100;
    this.users = tables[USERS]?.rows ?? 8;
    this.counters = {
      [SESSIONS]: { n_tup_ins: tables[SESSIONS]?.counters?.n_tup_ins ?? 0, n_tup_del: tables[SESSIONS]?.counters?.n_tup_del ?? 0 },
      [USERS]: { n_tup_ins: tables[USERS]?.counters?.n_tup_ins ?? 0, n_tup_del: tables[USERS]?.counters?.n_tup_del ?? 0 },
    };
    this.clock = startMs;
  }

  /** The next run's three entries. */
  next(): SyntheticEntry[] {
    const i = this.run++;
    this.outsideChanges(i);
    const runId = ulid(this.clock);
    const pre = this.snapshotAt(this.template.intent.snapshot, this.clock);
    const deleted = 1 + (i % 5);
    this.sessions -= deleted;
    this.counters[SESSIONS]!.n_tup_del += deleted;
    const post = this.snapshotAt(this.template.post.snapshot, this.clock + 2_000);
    const xid = String(100_000 + i * 17);
    const lsn = `0/${(0x1000000 + i * 4096).toString(16).toUpperCase()}`;

    const intent: Mutable<RunIntentBody> = structuredClone(this.template.intent) as Mutable<RunIntentBody>;
    intent.snapshot = pre;
    intent.backup.path = intent.backup.path ? `backups/${runId}.dump` : null;
    const outcome = structuredClone(this.template.outcome) as Mutable<RunOutcomeBody>;
    outcome.status = 'committing';
    outcome.changes = { [SESSIONS]: { inserted: 0, updated: 0, deleted, truncated: false } };
    outcome.inTxCounts = { ...outcome.inTxCounts, [SESSIONS]: this.sessions, [USERS]: this.users };
    outcome.xid = xid;
    outcome.walLsnStart = lsn;
    outcome.drift = [];
    const postBody = structuredClone(this.template.post) as Mutable<RunPostBody>;
    postBody.snapshot = post;
    postBody.commitLsn = lsn;
    postBody.xid = xid;

    const at = (ms: number): string => new Date(ms).toISOString();
    const entries: SyntheticEntry[] = [
      { kind: 'run.intent', runId, ts: at(this.clock + 1_000), body: intent },
      { kind: 'run.outcome', runId, ts: at(this.clock + 1_500), body: outcome },
      { kind: 'run.post', runId, ts: at(this.clock + 2_500), body: postBody },
    ];
    this.clock += HOUR;
    return entries;
  }

  /** What happens between runs, outside safe-run. */
  private outsideChanges(i: number): void {
    const arrived = 3 + (i % 7);
    this.sessions += arrived;
    this.counters[SESSIONS]!.n_tup_ins += arrived;
    if (i > 0 && i % 250 === 0) {
      this.users += 1;
      this.counters[USERS]!.n_tup_ins += 1;
    }
    // The incident: `npm run db:reset` with a seed that failed empties users outside any
    // run; three runs later someone seeds it again.
    if (i === this.incidentAt) {
      this.counters[USERS]!.n_tup_del += this.users;
      this.users = 0;
    }
    if (i === this.incidentAt + 3) {
      this.counters[USERS]!.n_tup_ins += 8;
      this.users = 8;
    }
  }

  private snapshotAt(base: Snapshot, ms: number): Snapshot {
    const snapshot = structuredClone(base) as Mutable<Snapshot>;
    snapshot.takenAt = new Date(ms).toISOString();
    const set = (key: string, rows: number): void => {
      const t = snapshot.tables[key] as Mutable<TableState> | undefined;
      if (!t) return;
      t.rows = rows;
      if (t.counters) {
        t.counters.n_tup_ins = this.counters[key]!.n_tup_ins;
        t.counters.n_tup_del = this.counters[key]!.n_tup_del;
        t.counters.n_live_tup = rows;
      }
    };
    set(SESSIONS, this.sessions);
    set(USERS, this.users);
    return snapshot;
  }
}
