import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { parseEntryLine } from '../src/audit/entry.js';
import { generateSigningKey } from '../src/audit/keys.js';
import { openAuditLog } from '../src/audit/log.js';
import type { AuditEntry } from '../src/audit/types.js';
import { createDb } from '../src/db/connection.js';
import { parseRecord, RECORD_KINDS, type RecordBody, type RunCommitFailedBody } from '../src/records/index.js';
import type { RunResult } from '../src/run/types.js';
import { findBinDir } from '../src/backup/pg-bin-dirs.js';
import { parseJson } from './helpers/cli.js';
import { serverUrl } from './helpers/db.js';
import { logLines } from './helpers/evidence.js';
import { createWorkspace, type Workspace } from './helpers/workspace.js';

const PSQL = path.join(findBinDir(['psql'])?.binDir ?? '/usr/lib/postgresql/15/bin', 'psql');

/**
 * The typed record model against what the code writes today: every kind the real CLI writes
 * parses, and nothing it writes is lost to the schema (the parsed body equals the stored one).
 * A signed body that does not parse is a verify finding, and the readers go on without it.
 */
describe('records: the audit log read as typed records', () => {
  let ws: Workspace;
  let run: RunResult;
  let scratch: string;
  const entries = (): AuditEntry[] => logLines(ws.evidenceDir).map((line) => parseEntryLine(line));
  const body = <K extends (typeof RECORD_KINDS)[number]>(kind: K): RecordBody<K> => {
    const entry = entries().find((e) => e.kind === kind);
    if (!entry) throw new Error(`no ${kind} entry in the log`);
    return entry.body as RecordBody<K>;
  };

  beforeAll(async () => {
    ws = await createWorkspace();
    // The change ledger on the run's table: the run seals its statements (ledger.seal) and cross-checks them.
    expect((await ws.cli(['protect', 'oidc_models'])).exitCode).toBe(0);
    const result = await ws.cli(['cleanup-invalid-sessions', '--json']);
    expect(result.exitCode).toBe(0);
    run = parseJson<RunResult>(result);
    scratch = `${ws.t.name}_restore_${run.runId.slice(0, 10).toLowerCase()}`;
    expect((await ws.cli(['snapshot', '--label', 'records'])).exitCode).toBe(0);
    // A count change, so exec.outcome carries a count-changed finding with its deltas.
    const oneRow = 'delete from oidc_models where ctid in (select ctid from oidc_models limit 1)';
    await ws.cli(['exec', '--backup', 'none', '--', PSQL, '-q', ws.t.url, '-c', oneRow]);
    expect((await ws.cli(['restore', run.runId])).exitCode).toBe(0);
    expect((await ws.cli(['keygen', '--rotate'])).exitCode).toBe(0);
    const other = mkdtempSync(path.join(os.tmpdir(), 'safe-run-records-b-'));
    try {
      const b = await generateSigningKey({ signingKeyPath: path.join(other, 'b.key'), evidenceDir: path.join(other, 'ev') });
      expect((await ws.cli(['keygen', '--add', b.publicKeyPath])).exitCode).toBe(0);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
    // A change outside any run (a new table shows at once; counters reach statistics late), answered with an ack.
    await sql`create table records_scratch (id int)`.execute(ws.t.db);
    const open = parseJson<{ findings: { id: string }[] }>(await ws.cli(['check', '--json'])).findings;
    expect((await ws.cli(['ack', open[0]!.id, '--reason', 'records test'])).exitCode).toBe(0);
    // The only backup is the newest of its script: kept, but the prune is recorded all the same.
    expect((await ws.cli(['prune', '--keep', '0'])).exitCode).toBe(0);
  }, 240_000);
  afterAll(async () => {
    const admin = createDb(serverUrl(), { maxConnections: 1 });
    try {
      await sql`drop database if exists ${sql.id(scratch)} with (force)`.execute(admin);
    } finally {
      await admin.destroy();
    }
    await ws.cleanup();
  });

  it('parses every entry the code writes today, keeping every field it wrote', () => {
    const seen = new Set<string>();
    for (const entry of entries()) {
      const parsed = parseRecord(entry);
      if (!parsed.ok) throw new Error(`entry ${entry.seq} (${entry.kind}): ${parsed.detail}`);
      expect(parsed.record.body).toEqual(entry.body);
      seen.add(entry.kind);
    }
    expect(body('exec.outcome').findings).toContainEqual(expect.objectContaining({ kind: 'count-changed', deltas: expect.anything() }));
    // run.commit-failed needs a COMMIT that fails; it has its own case below. restore.pitr needs a
    // pgBackRest cluster: tests/pitr.test.ts writes one and parses it.
    expect([...seen].sort()).toEqual(RECORD_KINDS.filter((k) => k !== 'run.commit-failed' && k !== 'restore.pitr').sort());
  });

  it('parses a run.commit-failed body as the pipeline writes it', () => {
    const failed: RunCommitFailedBody = { error: { message: 'could not serialize access', code: '40001' }, xid: '1234' };
    const parsed = parseRecord({ ...entries()[0]!, kind: 'run.commit-failed', body: failed });
    expect(parsed).toMatchObject({ ok: true, record: { kind: 'run.commit-failed', body: failed } });
  });

  it('still parses entries as older versions wrote them', () => {
    const { trust: _t, concurrentWrites: _c, ...outcome } = body('run.outcome');
    const olderOutcome = { ...outcome, violations: [{ table: 'public.oidc_models', rule: 'limit-exceeded', detail: 'deleted 9 > 5' }] };
    const { ddl: _d, ...script } = body('run.intent').script;
    const olderIntent = { ...body('run.intent'), script };
    const escapedPost = { ...body('run.post'), status: 'escaped' };
    const interrupted = { kind: 'interrupted-run', runId: 'R1', script: 'cleanup', status: 'interrupted', detail: 'killed' };
    const withDrift = { ...body('run.outcome'), drift: [interrupted] };
    const { snapshot: _s, ...scratchRestore } = body('restore');
    const base = entries()[0]!;
    for (const [kind, older] of [
      ['run.outcome', olderOutcome],
      ['run.intent', olderIntent],
      ['run.post', escapedPost],
      ['restore', scratchRestore],
      ['run.outcome', withDrift],
    ] as const) {
      const parsed = parseRecord({ ...base, kind, body: older });
      if (!parsed.ok) throw new Error(`${kind}: ${parsed.detail}`);
      expect(parsed.record.body).toEqual(older);
    }
    // A body without `v` is version 1; a version this safe-run does not know is named, not guessed at.
    const newer = parseRecord({ ...base, kind: 'run.outcome', body: { ...outcome, v: 2 } });
    expect(newer).toMatchObject({ ok: false, reason: 'bad-body', detail: expect.stringContaining('schema version 2') });
    expect(parseRecord({ ...base, kind: 'ledger.unsealed', body: {} })).toMatchObject({ ok: false, reason: 'unknown-kind' });
  });

  it('makes a signed body with a wrong field type a verify finding (exit 5, seq named), and log/show/blame skip it with a warning', async () => {
    expect((await ws.cli(['verify'])).exitCode).toBe(0);
    const outcome = body('run.outcome');
    const changes = { ...outcome.changes, 'public.oidc_models': { ...outcome.changes['public.oidc_models'], deleted: 'a few' } };
    // Signed with the log's current key: only the body is wrong, so the hash and signature verify.
    const audit = await openAuditLog({ evidenceDir: ws.evidenceDir, signingKeyPath: ws.signingKey });
    const bad = await audit.append('run.outcome', { ...outcome, changes } as never, { runId: run.runId });

    const verify = await ws.cli(['verify']);
    expect(verify.exitCode).toBe(5);
    expect(`${verify.stdout}${verify.stderr}`).toContain(`entry ${bad.seq}`);
    expect(`${verify.stdout}${verify.stderr}`).toMatch(/bad-body.*changes\.public\.oidc_models\.deleted/);

    const log = await ws.cli(['log', '--json']);
    expect(log.exitCode).toBe(0);
    expect(log.stderr).toContain(`audit entry ${bad.seq} skipped`);
    expect(parseJson<{ runs: { runId: string }[] }>(log).runs.map((r) => r.runId)).toContain(run.runId);

    const show = await ws.cli(['show', run.runId, '--json']);
    expect(show.exitCode).toBe(0);
    expect(show.stderr).toContain(`audit entry ${bad.seq} skipped`);
    // The run's own outcome is the one that parsed, not the bad one appended after it.
    expect(parseJson<{ outcome: { changes: unknown } }>(show).outcome.changes).toEqual(outcome.changes);

    const blame = await ws.cli(['blame', 'oidc_models']);
    expect(blame.exitCode).toBe(0);
    expect(blame.stderr).toContain(`audit entry ${bad.seq} skipped`);
  }, 60_000);
});
