import { cpSync, existsSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import type { CheckResult } from '../src/history/check.js';
import {
  checkpointScope,
  loadCheckpoint,
  SCAN_FORMAT,
  saveCheckpoint,
  writeAuthenticated,
  type ScanState,
  type Through,
} from '../src/history/checkpoint.js';
import { readSeals } from '../src/ledger/findings.js';
import { sealStamps } from '../src/ledger/verified.js';
import { silentLogger } from '../src/logger.js';
import { packageVersion } from '../src/version.js';
import { parseJson, runCli, type CliResult } from './helpers/cli.js';
import { writeAs } from './helpers/db.js';
import { createEvidenceDatabase, type EvidenceDatabase } from './helpers/evidence-store.js';
import { createEvidence, logLines, writeLogLines } from './helpers/evidence.js';
import { createWorkspace, type Workspace } from './helpers/workspace.js';

/**
 * check keeps the state of its scan through the newest entry (history/checkpoint.ts) and reads
 * only what was appended since. A cache that decides what an alert says is a target: a
 * resumed check must say exactly what a whole read says, and a checkpoint that was edited,
 * written with another key, replayed from earlier, or no longer matches the log or the
 * critical tables must never hide a finding.
 */

interface Stored {
  critical: string;
  through: Through;
  state: ScanState & { found: unknown[] };
}

const checkpointsOf = (ws: Workspace): string => path.join(ws.evidenceDir, 'checkpoints');

/** Where the resumed scan started, from check's debug log (null: it read the whole log). */
function resumedAfter(result: CliResult): number | null {
  const m = /check read the log\s+resumedAfter=(\d+|null)/.exec(result.stderr);
  if (!m) throw new Error(`no scan line in the debug log:\n${result.stderr}`);
  return m[1] === 'null' ? null : Number(m[1]);
}

/** What must not depend on how the log was read: everything but the moment of the check ("now"). */
function verdict(result: CliResult): Omit<CheckResult, 'checkedAt'> {
  const { checkedAt: _checkedAt, ...rest } = parseJson<CheckResult>(result);
  const findings = rest.findings.map((f) =>
    'firstSeen' in f && f.firstSeen.seq === null ? { ...f, firstSeen: { ...f.firstSeen, ts: 'now' } } : f,
  );
  return { ...rest, findings };
}

describe('check resumes from its checkpoint', () => {
  let ws: Workspace;
  afterEach(async () => {
    await ws.cleanup();
  });

  it('says exactly what a whole read of the log says, step after step', async () => {
    ws = await createWorkspace({ criticalTables: { users: {} } });
    ws.writeScript('fail-after-delete.sql', '-- @touches oidc_models: delete\ndelete from oidc_models;\nselect 1/0;\n');
    const check = () => ws.cli(['check', '--json', '--verbose']);
    const steps: Array<[string, () => Promise<unknown>]> = [
      ['snapshot', () => ws.cli(['snapshot'])],
      ['out-of-band delete', () => writeAs(ws.t.url, 'psql', ["delete from users where email like '%example.com'"])],
      ['snapshot', () => ws.cli(['snapshot', '--label', 'cron'])],
      ['dry run', () => ws.cli(['cleanup-invalid-sessions', '--dry-run'])],
      ['a run that fails and rolls back', () => ws.cli(['fail-after-delete'])],
      ['snapshot', () => ws.cli(['snapshot'])],
      [
        'ack of every open finding',
        async () => {
          const open = parseJson<CheckResult>(await check()).findings.flatMap((f) => ('id' in f ? [f.id] : []));
          expect(open.length).toBeGreaterThan(0);
          expect((await ws.cli(['ack', ...open, '--reason', 'test: answered'])).exitCode).toBe(0);
        },
      ],
      ['guarded run', () => ws.cli(['cleanup-invalid-sessions'])],
      ['out-of-band truncate', () => writeAs(ws.t.url, 'psql', ['truncate oidc_models'])],
      ['snapshot', () => ws.cli(['snapshot'])],
    ];
    const resumes: (number | null)[] = [];
    for (const [what, step] of steps) {
      await step();
      const resumed = await check();
      const kept = path.join(ws.cwd, 'kept-checkpoints');
      rmSync(kept, { recursive: true, force: true });
      if (existsSync(checkpointsOf(ws))) cpSync(checkpointsOf(ws), kept, { recursive: true });
      rmSync(checkpointsOf(ws), { recursive: true, force: true });
      const whole = await check();
      expect(resumedAfter(whole)).toBeNull();
      expect({ what, exitCode: resumed.exitCode, verdict: verdict(resumed) }).toEqual({
        what,
        exitCode: whole.exitCode,
        verdict: verdict(whole),
      });
      // The next step resumes from what the resumed check left, not from the whole read's.
      rmSync(checkpointsOf(ws), { recursive: true, force: true });
      if (existsSync(kept)) cpSync(kept, checkpointsOf(ws), { recursive: true });
      resumes.push(resumedAfter(resumed));
    }
    // Every check after the first started from a checkpoint, not from entry 1.
    expect(resumes[0]).toBeNull();
    expect(resumes.slice(1).every((seq) => seq !== null && seq > 0)).toBe(true);
    expect(readdirSync(checkpointsOf(ws))).toHaveLength(1);
  }, 300_000);

  it('never hides a finding: an edited, foreign-keyed or replayed checkpoint, a rewritten log', async () => {
    ws = await createWorkspace();
    expect((await ws.cli(['snapshot'])).exitCode).toBe(0);
    expect((await ws.cli(['check', '--json'])).exitCode).toBe(0);
    const file = readdirSync(checkpointsOf(ws)).find((f) => f.endsWith('.scan'));
    const clean = readFileSync(path.join(checkpointsOf(ws), file!), 'utf8');

    await writeAs(ws.t.url, 'psql', ['delete from oauth_clients']);
    expect((await ws.cli(['snapshot'])).exitCode).toBe(0);
    const first = await ws.cli(['check', '--json', '--verbose']);
    expect(first.exitCode).toBe(10);
    expect(resumedAfter(first)).toBe(1);
    const finding = parseJson<CheckResult>(first).findings.find((f) => f.table === 'public.oauth_clients');
    expect(finding).toBeDefined();
    const stillFound = async (): Promise<CliResult> => {
      const r = await ws.cli(['check', '--json', '--verbose']);
      expect(r.exitCode).toBe(10);
      expect(parseJson<CheckResult>(r).findings).toContainEqual(finding);
      return r;
    };
    const checkpoint = path.join(checkpointsOf(ws), file!);

    // Edited: the finding taken out of the stored state, the MAC left as it was.
    const [mac, body] = readFileSync(checkpoint, 'utf8').split(/\n(.*)/s) as [string, string];
    const stored = JSON.parse(body) as Stored;
    expect(stored.state.found).toHaveLength(1);
    stored.state.found = [];
    writeFileSync(checkpoint, `${mac}\n${JSON.stringify(stored)}`);
    expect(resumedAfter(await stillFound())).toBeNull();

    // Written with another key: a valid MAC, but not under the signing key of this log.
    const stranger = await createEvidence();
    try {
      const config = { evidenceDir: ws.evidenceDir, signingKey: stranger.signingKey, criticalTables: {} };
      const theirs = await checkpointScope(config, parseJson<CheckResult>(first).database, packageVersion(), silentLogger);
      const valid = JSON.parse(readFileSync(checkpoint, 'utf8').split('\n')[1]!) as Stored;
      expect(valid.state.found).toHaveLength(1);
      // Everything as check would compute it, but the MAC key.
      const forged = { ...theirs!, file: checkpoint, critical: valid.critical };
      await saveCheckpoint(forged, valid.through, { ...valid.state, found: [] }, silentLogger);
      expect(await loadCheckpoint(forged, silentLogger)).not.toBeNull();
      expect(resumedAfter(await stillFound())).toBeNull();
    } finally {
      await stranger.cleanup();
    }

    // Replayed: the checkpoint from before the delete is a true state of the log's start, so it only costs a longer read.
    writeFileSync(checkpoint, clean);
    expect(resumedAfter(await stillFound())).toBe(1);

    // The log rewritten under the checkpoint, same length: entry 2 is not the one it was taken through.
    expect(resumedAfter(await stillFound())).toBe(2);
    const lines = logLines(ws.evidenceDir);
    writeLogLines(ws.evidenceDir, [lines[0]!, lines[1]!.replace('"label":null', '"label":"ab"'), ...lines.slice(2)]);
    expect(lines[1]).toContain('"label":null');
    const rewritten = await ws.cli(['check', '--json', '--verbose']);
    expect(resumedAfter(rewritten)).toBeNull();
    expect(rewritten.stderr).toMatch(/check checkpoint ignored.*entry 2 changed/);
  }, 180_000);

  it('is not used once the critical tables change, so a past drift becomes the critical finding it now is', async () => {
    ws = await createWorkspace({ criticalTables: { users: { maxDropPercent: 90 } } });
    expect((await ws.cli(['snapshot'])).exitCode).toBe(0);
    await writeAs(ws.t.url, 'psql', ["delete from users where email like '%example.com'"]);
    expect((await ws.cli(['snapshot'])).exitCode).toBe(0);
    const before = parseJson<CheckResult>(await ws.cli(['check', '--json']));
    expect(before.findings.map((f) => f.kind)).not.toContain('critical-drop');

    ws.writeConfig({ criticalTables: { users: {} } });
    const after = await ws.cli(['check', '--json', '--verbose']);
    expect(resumedAfter(after)).toBeNull();
    expect(parseJson<CheckResult>(after).findings).toContainEqual(
      expect.objectContaining({ kind: 'critical-drop', table: 'public.users', firstSeen: expect.objectContaining({ seq: 2 }) }),
    );
  }, 120_000);

  it('compares a ledger seal again once its copy or its rows change, and never trusts a memo under another key', async () => {
    ws = await createWorkspace();
    await sql
      .raw("create table notes (id int primary key, note text); insert into notes select g, 'n' || g from generate_series(1, 40) g")
      .execute(ws.t.db);
    expect((await ws.cli(['protect', 'notes', '--keep-rows'])).exitCode).toBe(0);
    await writeAs(ws.t.url, 'psql', ['delete from notes where id <= 5']);
    expect((await ws.cli(['snapshot'])).exitCode).toBe(0); // seals the DELETE
    const tampered = async (): Promise<string[]> => {
      const r = await ws.cli(['check', '--json', '--verbose']);
      return parseJson<CheckResult>(r).findings.flatMap((f) => (f.kind === 'ledger-tampered' ? [f.detail] : []));
    };
    expect(await tampered()).toEqual([]);
    const second = await ws.cli(['check', '--json', '--verbose']);
    expect(second.stderr).toMatch(/ledger seals checked\s+intact=(\d+) notComparedAgain=\1 problems=0/);

    // The copy rewritten, same length, its times put back: ctime still moves, so it is read again.
    const copy = readdirSync(path.join(ws.evidenceDir, 'ledger')).find((f) => f.endsWith('.jsonl') && !f.endsWith('.rows.jsonl'))!;
    const copyPath = path.join(ws.evidenceDir, 'ledger', copy);
    const original = readFileSync(copyPath, 'utf8');
    const times = statSync(copyPath);
    writeFileSync(copyPath, original.replace('"DELETE"', '"UPDATE"'));
    utimesSync(copyPath, times.atime, times.mtime);
    expect(await tampered()).toEqual([expect.stringMatching(/sealed copy .* differs from its signed sha256/)]);
    writeFileSync(copyPath, original);
    expect(await tampered()).toEqual([]);

    // A sealed statement deleted, and the memo rewritten to vouch for what is left, under another key.
    const { rows } = await sql<{
      id: string;
    }>`select id::text from safe_run.ledger where table_name = 'notes' and operation = 'DELETE'`.execute(ws.t.db);
    await sql`delete from safe_run.ledger where id = ${rows[0]!.id}::int8`.execute(ws.t.db);
    const stranger = await createEvidence();
    try {
      const database = parseJson<CheckResult>(await ws.cli(['check', '--json'])).database;
      const ours = await checkpointScope(
        { evidenceDir: ws.evidenceDir, signingKey: ws.signingKey, criticalTables: {} },
        database,
        packageVersion(),
        silentLogger,
      );
      const theirs = await checkpointScope(
        { evidenceDir: ws.evidenceDir, signingKey: stranger.signingKey, criticalTables: {} },
        database,
        packageVersion(),
        silentLogger,
      );
      const seals = await readSeals(ws.evidenceDir, () => {});
      const stamps = await sealStamps(ws.t.db, ws.evidenceDir, seals);
      await writeAuthenticated(
        ours!.ledgerFile,
        theirs!.macKey,
        { format: SCAN_FORMAT, databaseKey: database, stamps: [...stamps] },
        silentLogger,
      );
      expect(await tampered()).toEqual([expect.stringMatching(/1 sealed ledger statement\(s\) deleted from safe_run.ledger/)]);
    } finally {
      await stranger.cleanup();
    }
  }, 180_000);

  it('without the signing key reads the whole log and writes nothing', async () => {
    ws = await createWorkspace();
    expect((await ws.cli(['snapshot'])).exitCode).toBe(0);
    const env = { ...ws.env, SAFE_RUN_SIGNING_KEY: path.join(ws.cwd, 'missing.key') };
    const noKey = await runCli(['check', '--json', '--verbose'], { cwd: ws.cwd, env });
    expect(noKey.exitCode).toBe(0);
    expect(resumedAfter(noKey)).toBeNull();
    expect(noKey.stderr).toMatch(/no checkpoint without the signing key/);
    expect(existsSync(checkpointsOf(ws))).toBe(false);
  }, 60_000);
});

describe('check resumes from its checkpoint in an evidence database', () => {
  let ws: Workspace;
  let store: EvidenceDatabase;
  beforeEach(async () => {
    store = await createEvidenceDatabase();
  });
  afterEach(async () => {
    await ws.cleanup();
    await store.drop();
  });

  it('resumes by seq in an evidence database, and reads it all again once that entry was changed', async () => {
    ws = await createWorkspace({ evidence: { store: store.writerUrl } });
    expect((await ws.cli(['snapshot'])).exitCode).toBe(0);
    expect(resumedAfter(await ws.cli(['check', '--json', '--verbose']))).toBeNull();
    await writeAs(ws.t.url, 'psql', ['delete from oauth_clients']);
    expect((await ws.cli(['snapshot'])).exitCode).toBe(0);
    const resumed = await ws.cli(['check', '--json', '--verbose']);
    expect(resumedAfter(resumed)).toBe(1);
    rmSync(checkpointsOf(ws), { recursive: true, force: true });
    const whole = await ws.cli(['check', '--json', '--verbose']);
    expect(resumedAfter(whole)).toBeNull();
    expect(verdict(resumed)).toEqual(verdict(whole));
    expect(verdict(resumed).findings).toContainEqual(expect.objectContaining({ table: 'public.oauth_clients' }));

    await sql`update safe_run_evidence.entries set line = replace(line, '"label":null', '"label":"ab"') where seq = 2`.execute(store.db);
    const rewritten = await ws.cli(['check', '--json', '--verbose']);
    expect(resumedAfter(rewritten)).toBeNull();
    expect(rewritten.stderr).toMatch(/check checkpoint ignored.*entry 2 changed/);
  }, 120_000);
});
