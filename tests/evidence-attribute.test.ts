import { attributeChanges } from '../src/blame/attribute.js';
import { liveRef, type EntryRef, type LoggedRef } from '../src/history/entry-ref.js';
import type { TableObservation } from '../src/history/observations.js';
import type { ResolvedStatus } from '../src/history/run-status.js';
import type { RunSummary } from '../src/history/runs.js';
import type { RunFacts } from '../src/blame/windows.js';
import { parseSince } from '../src/commands/since.js';

/**
 * Blame's attribution rules on hand-built observations, where every number is chosen: the
 * end-to-end tests cannot make another session commit at an exact moment inside a run.
 */
const T = 'public.oidc_models';
const DB = { key: 'h:5432/app', oid: 1, systemIdentifier: '7', statsReset: null, postmasterStart: '2025-01-01T00:00:00Z' };

function ref(seq: number, kind: EntryRef['kind'], runId: string | null = null): LoggedRef {
  return { seq, kind, ts: `2025-11-14T00:${String(seq).padStart(2, '0')}:00Z`, runId, hash: `${seq}`.padStart(64, '0') };
}

function obs(r: EntryRef, rows: number | null, del = 0, ins = 0, db = DB, walLsn = `0/${(r.seq ?? 99) * 16}`): TableObservation {
  return {
    ref: r,
    takenAt: r.ts,
    walLsn,
    database: db,
    table:
      rows === null
        ? null
        : {
            oid: 100,
            relfilenode: 100,
            rows,
            rowsKind: 'exact',
            counters: { n_tup_ins: ins, n_tup_upd: 0, n_tup_del: del, n_live_tup: rows },
            fingerprint: 'f',
          },
  };
}

function run(
  runId: string,
  intent: number,
  outcome: number,
  post: number | null,
  deleted: number,
  status: 'committing' | 'rolled-back' = 'committing',
): RunFacts {
  const summary: RunSummary = {
    runId,
    intent: {
      ref: ref(intent, 'run.intent', runId),
      script: 'cleanup',
      scriptSha256: 'x',
      operator: { osUser: 'ops', gitUser: null, gitEmail: null },
      reason: null,
      args: [],
      dryRun: false,
      databaseKey: DB.key,
      systemIdentifier: '7',
      backup: { status: 'verified', scope: 'touched', path: 'b', sha256: null, tables: [T] },
    },
    outcome: {
      ref: ref(outcome, 'run.outcome', runId),
      status,
      changes: deleted ? { [T]: { inserted: 0, updated: 0, deleted, truncated: false } } : {},
      inTxCounts: {},
      xid: '1',
      error: null,
      trust: null,
    },
    post: post === null ? null : { ref: ref(post, 'run.post', runId), commitLsn: `0/${post * 16}` },
    commitFailed: null,
  };
  const resolved: ResolvedStatus =
    post !== null ? { status: 'committed', note: null, committed: true } : { status: 'rolled-back', note: null, committed: false };
  return { run: summary, status: resolved };
}

describe('attributeChanges', () => {
  it('gives a run exactly its own deletes, and the rest of the pre->post difference to outside', () => {
    // 100 rows; the run deleted 5 while another session deleted 3 more: pre 100, post 92.
    const observations = [obs(ref(1, 'run.intent', 'R1'), 100), obs(ref(3, 'run.post', 'R1'), 92, 8)];
    const changes = attributeChanges(T, observations, [run('R1', 1, 2, 3, 5)]);
    expect(changes).toHaveLength(2);
    expect(changes[0]).toMatchObject({
      before: 100,
      after: 95,
      attribution: { type: 'run', runId: 'R1', script: 'cleanup' },
      change: { deleted: 5 },
    });
    // Beyond the run's own deletes, inside its bracket: another session, during that run.
    expect(changes[1]).toMatchObject({
      before: 95,
      after: 92,
      counters: { inserted: 0, updated: 0, deleted: 3 },
      attribution: { type: 'concurrent' },
    });
    expect(changes[1]!.attribution).toEqual({
      type: 'concurrent',
      runId: 'R1',
      script: 'cleanup',
      after: '#1 run.intent of cleanup R1 at 2025-11-14T00:01:00Z',
      before: '#3 run.post of cleanup R1 at 2025-11-14T00:03:00Z',
    });
  });

  it('never blames a run for a change it did not make', () => {
    const observations = [
      obs(ref(1, 'snapshot'), 8),
      obs(ref(2, 'run.intent', 'R1'), 8),
      obs(ref(4, 'run.post', 'R1'), 8),
      obs(liveRef('2025-11-14T01:00:00Z'), 0, 8),
    ];
    const changes = attributeChanges('public.users', observations, [run('R1', 2, 3, 4, 0)]);
    expect(changes).toEqual([
      expect.objectContaining({
        from: '#4 run.post',
        to: 'now',
        before: 8,
        after: 0,
        counters: { inserted: 0, updated: 0, deleted: 8 },
        attribution: {
          type: 'outside',
          after: expect.stringMatching(/^#4 run\.post of cleanup R1/),
          before: expect.stringMatching(/^now/),
        },
      }),
    ]);
  });

  it('does not count a rolled-back run, nor report its attempted deletes as outside activity', () => {
    // The counters saw 5 attempted deletes that were rolled back; the rows did not move.
    const observations = [obs(ref(1, 'run.intent', 'R1'), 50), obs(ref(3, 'snapshot'), 50, 5)];
    expect(attributeChanges(T, observations, [run('R1', 1, 2, null, 5, 'rolled-back')])).toEqual([]);
  });

  it('does not say "while it ran" of a change after a rolled-back run ended, before the next observation', () => {
    // A dry or rolled-back run has no post-snapshot: the window after its intent runs on to "now".
    const observations = [obs(ref(1, 'run.intent', 'R1'), 8), obs(liveRef('2025-11-14T01:00:00Z'), 0, 8)];
    const changes = attributeChanges('public.users', observations, [run('R1', 1, 2, null, 0, 'rolled-back')]);
    expect(changes).toEqual([expect.objectContaining({ before: 8, after: 0, attribution: expect.objectContaining({ type: 'outside' }) })]);
  });

  it("carries a run's deletes forward when the counters reach shared statistics after its post-snapshot", () => {
    const observations = [obs(ref(1, 'run.intent', 'R1'), 50), obs(ref(3, 'run.post', 'R1'), 45, 0), obs(ref(4, 'snapshot'), 45, 5)];
    const changes = attributeChanges(T, observations, [run('R1', 1, 2, 3, 5)]);
    expect(changes).toEqual([expect.objectContaining({ before: 50, after: 45, attribution: expect.objectContaining({ type: 'run' }) })]);
  });

  it('puts the commit after a cron snapshot that landed between the intent and the post', () => {
    const observations = [
      obs(ref(1, 'run.intent', 'R1'), 50),
      obs(ref(2, 'snapshot'), 50, 0, 0, DB, '0/20'),
      obs(ref(4, 'run.post', 'R1'), 45, 5),
    ];
    const changes = attributeChanges(T, observations, [run('R1', 1, 3, 4, 5)]);
    expect(changes).toEqual([
      expect.objectContaining({
        from: '#2 snapshot',
        to: '#4 run.post',
        before: 50,
        after: 45,
        attribution: expect.objectContaining({ type: 'run', runId: 'R1' }),
      }),
    ]);
  });

  it('marks a recreated database and does not compare counters across it', () => {
    const recreated = { ...DB, oid: 2 };
    const observations = [obs(ref(1, 'snapshot'), 8, 0), obs(ref(2, 'snapshot'), 0, 0, 0, recreated)];
    const [change] = attributeChanges('public.users', observations, []);
    expect(change).toMatchObject({ before: 8, after: 0, counters: null, events: ['db-recreated'], attribution: { type: 'outside' } });
  });

  it('reports a table that disappeared', () => {
    const [change] = attributeChanges('public.users', [obs(ref(1, 'snapshot'), 8), obs(ref(2, 'snapshot'), null)], []);
    expect(change).toMatchObject({ before: 8, after: null, events: ['table-dropped'] });
  });
});

describe('parseSince', () => {
  const now = new Date('2025-11-14T12:00:00Z');
  it.each([
    ['2h', '2025-11-14T10:00:00.000Z'],
    ['3d', '2025-11-11T12:00:00.000Z'],
    ['30m', '2025-11-14T11:30:00.000Z'],
    ['1w', '2025-11-07T12:00:00.000Z'],
    ['2025-11-14', '2025-11-14T00:00:00.000Z'],
    ['2025-11-14T00:20:00Z', '2025-11-14T00:20:00.000Z'],
  ])('%s', (input, expected) => {
    expect(parseSince(input, now).toISOString()).toBe(expected);
  });

  it('refuses what it cannot read, as a usage error', () => {
    expect(() => parseSince('yesterday', now)).toThrow(expect.objectContaining({ exitCode: 2 }));
  });
});
