import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { auditLogPath } from '../src/audit/read.js';
import { createDb } from '../src/db/connection.js';
import { withDatabase } from '../src/db/url.js';
import { parseJson, runCli, type CliResult } from './helpers/cli.js';
import { recreateTestDatabase, serverUrl } from './helpers/db.js';
import { createEvidenceDatabase, storedLines, type EvidenceDatabase } from './helpers/evidence-store.js';
import { createWorkspace, type Workspace } from './helpers/workspace.js';

interface VerifyJson {
  readonly ok: boolean;
  readonly entries: number;
  readonly head: { readonly seq: number; readonly hash: string } | null;
  readonly firstBad?: { readonly seq: number; readonly reason: string };
}

/**
 * The shared evidence store end to end, through the built CLI: a real guarded run and
 * snapshots land as rows of safe_run_evidence.entries in a separate evidence database, and
 * every evidence command reads them from there.
 */
describe('a shared evidence store in PostgreSQL', () => {
  let ws: Workspace;
  let store: EvidenceDatabase;
  /** Every CLI result of the suite, to look for the store's password in. */
  const seen: CliResult[] = [];
  const cli = async (args: readonly string[], env: Record<string, string | undefined> = {}): Promise<CliResult> => {
    const result = await runCli(args, { cwd: ws.cwd, env: { ...ws.env, ...env } });
    seen.push(result);
    return result;
  };

  beforeAll(async () => {
    store = await createEvidenceDatabase();
    ws = await createWorkspace({ evidence: { store: store.writerUrl } });
  });
  afterAll(async () => {
    await ws.cleanup();
    await store.drop();
  });

  it('records a guarded run and a snapshot as rows that verify, with no audit.jsonl written', async () => {
    const run = await cli(['cleanup-invalid-sessions', '--json', '--log-format', 'json', '--verbose']);
    expect(parseJson(run)).toMatchObject({ status: 'committed', exitCode: 0 });
    expect((await cli(['snapshot', '--label', 'after cleanup', '--json'])).exitCode).toBe(0);

    const lines = (await storedLines(store.db)).get(ws.t.name) ?? [];
    expect(lines.map((l) => JSON.parse(l).kind)).toEqual(['run.intent', 'run.outcome', 'run.post', 'snapshot']);
    expect(existsSync(auditLogPath(ws.evidenceDir))).toBe(false);

    const verify = await cli(['verify', '--json']);
    expect(verify.exitCode).toBe(0);
    expect(parseJson<VerifyJson>(verify)).toMatchObject({ ok: true, entries: 4, head: { seq: 4 } });
    const log = parseJson<{ runs: { script: string; status: string }[] }>(await cli(['log', '--json']));
    expect(log.runs).toEqual([expect.objectContaining({ script: 'cleanup-invalid-sessions', status: 'committed' })]);
  });

  it('exports an audit.jsonl that verify accepts offline, and imports it into another store', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'safe-run-export-'));
    const other = await createEvidenceDatabase();
    try {
      const out = path.join(dir, 'audit.jsonl');
      const exported = await cli(['evidence', 'export', '--out', out, '--json']);
      expect(parseJson(exported)).toMatchObject({ action: 'export', entries: 4, verified: true });
      // Byte for byte the rows' lines: the same canonical JSON the file store writes.
      expect(readFileSync(out, 'utf8')).toBe(`${(await storedLines(store.db)).get(ws.t.name)!.join('\n')}\n`);
      expect((await cli(['evidence', 'export', '--out', out])).exitCode).toBe(2);

      const offline = await cli(['verify', '--json'], {
        SAFE_RUN_EVIDENCE_STORE: 'file',
        SAFE_RUN_EVIDENCE_DIR: dir,
        DATABASE_URL: undefined,
      });
      expect(parseJson<VerifyJson>(offline)).toMatchObject({ ok: true, entries: 4 });

      const intoOther = { SAFE_RUN_EVIDENCE_STORE: other.writerUrl };
      const imported = await cli(['evidence', 'import', out, '--json'], intoOther);
      expect(parseJson(imported)).toMatchObject({ action: 'import', entries: 4 });
      expect(parseJson<VerifyJson>(await cli(['verify', '--json'], intoOther))).toMatchObject({ ok: true, entries: 4 });
      // A second import would fork the chain it now holds.
      expect((await cli(['evidence', 'import', out], intoOther)).exitCode).toBe(2);

      // A broken file is refused before anything reaches the store.
      const third = await createEvidenceDatabase();
      try {
        const lines = readFileSync(out, 'utf8').split('\n');
        lines[1] = lines[1]!.replace('"status":"committing"', '"status":"dry-run"');
        writeFileSync(out, lines.join('\n'));
        const refused = await cli(['evidence', 'import', out], { SAFE_RUN_EVIDENCE_STORE: third.writerUrl });
        expect(refused.exitCode).toBe(5);
        expect(refused.stderr).toMatch(/does not verify: entry 2: hash-mismatch/);
        expect((await storedLines(third.db)).size).toBe(0);
      } finally {
        await third.drop();
      }
    } finally {
      await other.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails verify (exit 5) on a row changed in the store, and on a cut-off tail', async () => {
    const { rows } = await sql<{ line: string }>`select line from safe_run_evidence.entries where seq = 3`.execute(store.db);
    const original = rows[0]!.line;
    await sql`update safe_run_evidence.entries set line = replace(line, '"committed"', '"rolled-back"') where seq = 3`.execute(store.db);
    try {
      const tampered = await cli(['verify', '--json']);
      expect(tampered.exitCode).toBe(5);
      expect(parseJson<VerifyJson>(tampered).firstBad).toMatchObject({ seq: 3, reason: 'hash-mismatch' });
    } finally {
      await sql`update safe_run_evidence.entries set line = ${original} where seq = 3`.execute(store.db);
    }
    const last = await sql<{
      line: string;
      seq: number;
    }>`select line, seq from safe_run_evidence.entries order by seq desc limit 1`.execute(store.db);
    await sql`delete from safe_run_evidence.entries where seq = ${last.rows[0]!.seq}`.execute(store.db);
    try {
      const cut = await cli(['verify', '--json']);
      expect(cut.exitCode).toBe(5);
      expect(parseJson<VerifyJson>(cut).firstBad).toMatchObject({ reason: 'truncated' });
    } finally {
      const entry = JSON.parse(last.rows[0]!.line);
      await sql`insert into safe_run_evidence.entries (chain_id, seq, ts, kind, run_id, key_id, hash, line)
        select chain_id, ${entry.seq}, ${entry.ts}::timestamptz, ${entry.kind}, null, ${entry.keyId}, ${entry.hash}, ${last.rows[0]!.line}
          from safe_run_evidence.chains`.execute(store.db);
    }
    expect((await cli(['verify', '--json'])).exitCode).toBe(0);
  });

  it('keeps the order of the store clock when the hosts clocks are hours apart', async () => {
    const skew = (hours: number): string => {
      const file = path.join(ws.cwd, `skew${hours}.mjs`);
      writeFileSync(
        file,
        `const Real = Date; const offset = ${hours} * 3600e3;
         globalThis.Date = class extends Real {
           constructor(...a) { if (a.length) super(...a); else super(Real.now() + offset); }
           static now() { return Real.now() + offset; }
         };`,
      );
      return `--import=${file}`;
    };
    for (const hours of [3, -3, 2]) {
      const result = await cli(['snapshot', '--label', `skewed ${hours}h`, '--json'], { NODE_OPTIONS: skew(hours) });
      expect(result.exitCode).toBe(0);
    }
    const { rows } = await sql<{ now: Date }>`select now()`.execute(store.db);
    const lines = (await storedLines(store.db)).get(ws.t.name)!.map((l) => JSON.parse(l) as { ts: string; body: { label?: string } });
    const skewed = lines.filter((e) => e.body.label?.startsWith('skewed'));
    expect(skewed.map((e) => e.body.label)).toEqual(['skewed 3h', 'skewed -3h', 'skewed 2h']);
    const times = skewed.map((e) => Date.parse(e.ts));
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    // Each is the evidence database's time, not the host's three hours off.
    for (const t of times) expect(Math.abs(t - rows[0]!.now.getTime())).toBeLessThan(10 * 60e3);
    expect(parseJson<VerifyJson>(await cli(['verify', '--json']))).toMatchObject({ ok: true });
  });

  it('keeps every earlier observation after the target is dropped and recreated', async () => {
    await ws.t.db.destroy();
    await recreateTestDatabase(ws.t.name);
    const target = createDb(withDatabase(serverUrl(), ws.t.name), { maxConnections: 1 });
    try {
      // The incident: after the reset the users are gone.
      await sql`delete from users`.execute(target);
    } finally {
      await target.destroy();
    }
    const check = await cli(['check', '--json']);
    expect(check.exitCode).toBe(10);
    const kinds = parseJson<{ findings: { kind: string }[] }>(check).findings.map((f) => f.kind);
    expect(kinds).toContain('db-recreated');

    const blame = parseJson<{ observations: { kind: string; rows: number | null }[]; changes: { before: number; after: number }[] }>(
      await cli(['blame', 'users', '--json']),
    );
    // The run's pre- and post-snapshots and the cron snapshots, all from before the drop.
    expect(blame.observations.filter((o) => o.kind === 'run.intent' || o.kind === 'run.post')).toHaveLength(2);
    expect(blame.observations.filter((o) => o.kind === 'snapshot').length).toBeGreaterThanOrEqual(4);
    expect(blame.changes).toContainEqual(expect.objectContaining({ before: 8, after: 0 }));
  });

  it("refuses the target's own database as the store, and commits nothing when the store is down", async () => {
    const own = await cli(['snapshot'], { SAFE_RUN_EVIDENCE_STORE: ws.t.url });
    expect(own.exitCode).toBe(2);
    expect(own.stderr).toMatch(/names the target database itself/);

    const down = new URL(store.writerUrl);
    down.port = '1';
    const before = await sql<{ n: number }>`select count(*)::int as n from safe_run_evidence.entries`.execute(store.db);
    const run = await cli(['cleanup-invalid-sessions'], { SAFE_RUN_EVIDENCE_STORE: down.href });
    expect(run.exitCode).toBe(5);
    expect(run.stderr).toMatch(/evidence store evidence database postgres:\/\/evidence_writer_\w+@/);
    const after = await sql<{ n: number }>`select count(*)::int as n from safe_run_evidence.entries`.execute(store.db);
    expect(after.rows[0]!.n).toBe(before.rows[0]!.n);
  });

  it("never shows the store's password: not in output, logs or the stored entries", async () => {
    expect(seen.length).toBeGreaterThan(10);
    for (const result of seen) {
      expect(result.stdout).not.toContain(store.password);
      expect(result.stderr).not.toContain(store.password);
    }
    for (const lines of (await storedLines(store.db)).values()) for (const line of lines) expect(line).not.toContain(store.password);
  });
});
