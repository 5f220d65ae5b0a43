import canonicalize from 'canonicalize';
import { createHash, createPublicKey, verify } from 'node:crypto';
import { appendFileSync, chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import { databaseAnchor } from '../src/audit/anchor.js';
import { canonicalJson } from '../src/audit/canonical.js';
import { signEntry } from '../src/audit/entry.js';
import { generateSigningKey, newKeyPair } from '../src/audit/keys.js';
import { openAuditLog } from '../src/audit/log.js';
import { auditLogPath, readRawEntries } from '../src/audit/read.js';
import { GENESIS_PREV, type AuditEntry } from '../src/audit/types.js';
import { verifyLog } from '../src/audit/verify.js';
import { createDb } from '../src/db/connection.js';
import { ExitCode } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { createEvidence, logLines, type TestEvidence } from './helpers/evidence.js';
import { rejection } from './helpers/errors.js';
import { appendNote, NOTE_KIND } from './helpers/note-kind.js';

/** A logger that keeps what it was told, to assert on warnings. */
function recordingLogger(): Logger & { warnings: string[]; text(): string } {
  const lines: string[] = [];
  const warnings: string[] = [];
  const keep = (msg: string, fields?: Record<string, unknown>) => lines.push(`${msg} ${JSON.stringify(fields ?? {})}`);
  return {
    warnings,
    text: () => lines.join('\n'),
    debug: keep,
    info: keep,
    error: keep,
    warn: (msg, fields) => {
      warnings.push(`${msg} ${JSON.stringify(fields ?? {})}`);
      keep(msg, fields);
    },
  };
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('canonical JSON', () => {
  it('sorts keys, drops whitespace, and agrees with the RFC 8785 package', () => {
    const samples: unknown[] = [
      { b: 1, a: [3, { z: null, y: 'é\n"' }], c: { '': 1.5e-7, B: true, a: -0 } },
      ['x', 1e21, 0.1, 123456789012345680000],
      { '\u00e9': 1, e: 2, '\ud83d\ude00': 3, E: 4 },
      { date: new Date('2024-01-02T03:04:05Z'), skip: undefined },
      // JavaScript lists array-index keys first, in numeric order: the package's order is another.
      { b: 1, '10': 'ten', '9': 'nine', '0x': 0, a: { '2': [{ z: 1, '1': 2 }] } },
      JSON.parse('{"__proto__": {"b": 1, "a": 2}, "x": [null, true, "\\\\ud800"]}'),
      { toJSON: () => ({ y: 1, x: { toJSON: () => [3, { d: 1, c: 2 }] } }), ignored: 1 },
      [undefined, Symbol('s'), { u: undefined, s: Symbol('t') }],
      Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`public.t${(i * 7919) % 300}`, { rows: i, kind: 'estimate', n: i / 3 }])),
    ];
    for (const sample of samples) expect(canonicalJson(sample)).toBe(canonicalize(sample));
    expect(canonicalJson({ b: 2, a: 1 })).toBe('{"a":1,"b":2}');
  });

  it('refuses values with no single JSON text', () => {
    expect(() => canonicalJson(undefined)).toThrow(TypeError);
    expect(() => canonicalJson({ n: Number.NaN })).toThrow(/NaN/);
    expect(() => canonicalJson({ n: 1n })).toThrow(TypeError);
    expect(() => canonicalJson({ s: '\ud800' })).toThrow(/surrogate/);
    expect(() => canonicalJson({ deep: [{ '\udc00': 1 }] })).toThrow(/surrogate/);
    expect(() => canonicalJson([{ n: Number.POSITIVE_INFINITY }])).toThrow(/Infinity/);
  });

  it('writes each entry line as the canonical JSON of the whole entry', () => {
    const key = newKeyPair();
    for (const runId of [undefined, 'run-1', 'quote"and\\slash']) {
      const { entry, line } = signEntry(
        { seq: 7, prev: GENESIS_PREV, kind: 'run.intent', body: { z: [1, { b: 2, a: 1 }], a: 'x' }, runId },
        key,
      );
      expect(line).toBe(canonicalize(entry));
      const { hash, sig, ...unsigned } = entry;
      expect(hash).toBe(createHash('sha256').update(canonicalize(unsigned)!).digest('hex'));
      expect(verify(null, Buffer.from(hash), key.publicKey, Buffer.from(sig, 'hex'))).toBe(true);
    }
  });
});

describe('openAuditLog / append', () => {
  let ev: TestEvidence;
  beforeEach(async () => {
    ev = await createEvidence();
  });
  afterEach(async () => {
    await ev.cleanup();
  });

  it('appends signed, chained, canonical entries that read back in order', async () => {
    const audit = await openAuditLog({ evidenceDir: ev.evidenceDir, signingKeyPath: ev.signingKey });
    const first = await appendNote(audit, { script: 'cleanup', args: ['--x'] }, { runId: 'r1' });
    const second = await appendNote(audit, { label: 'cron' });
    expect(first).toMatchObject({ seq: 1, kind: NOTE_KIND, runId: 'r1', prev: GENESIS_PREV, keyId: ev.keyId, body: { script: 'cleanup' } });
    expect(second).toMatchObject({ seq: 2, kind: NOTE_KIND, prev: first.hash, keyId: ev.keyId });
    expect(second).not.toHaveProperty('runId');
    expect(Date.parse(first.ts)).not.toBeNaN();

    const lines = logLines(ev.evidenceDir);
    expect(lines).toEqual([canonicalize(first), canonicalize(second)]);
    const publicKey = createPublicKey(readFileSync(path.join(ev.evidenceDir, 'keys', `${ev.keyId}.pub`)));
    const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
    expect(ev.keyId).toBe(createHash('sha256').update(raw).digest('hex').slice(0, 16));
    expect(verify(null, Buffer.from(first.hash), publicKey, Buffer.from(first.sig, 'hex'))).toBe(true);

    const read = await collect(readRawEntries(ev.evidenceDir));
    expect(read.map((e) => [e.seq, e.hash])).toEqual([
      [1, first.hash],
      [2, second.hash],
    ]);
    expect(await verifyLog({ evidenceDir: ev.evidenceDir })).toMatchObject({ ok: true, entries: 2 });
  });

  it('continues the chain across log handles, and across entries larger than the read-back chunk', async () => {
    const big = { blob: 'x'.repeat(200_000), unicode: 'ünïcødé 🙂'.repeat(5000) };
    const a = await openAuditLog({ evidenceDir: ev.evidenceDir, signingKeyPath: ev.signingKey });
    await appendNote(a, big);
    const b = await openAuditLog({ evidenceDir: ev.evidenceDir, signingKeyPath: ev.signingKey });
    const after = await appendNote(b, big);
    const last = await appendNote(a, { small: true });
    expect([after.seq, last.seq]).toEqual([2, 3]);
    expect(last.prev).toBe(after.hash);
    expect(await verifyLog({ evidenceDir: ev.evidenceDir })).toMatchObject({ ok: true, entries: 3 });
  });

  it('keeps concurrent appends from one process in one chain', async () => {
    const audit = await openAuditLog({ evidenceDir: ev.evidenceDir, signingKeyPath: ev.signingKey });
    const written = await Promise.all(Array.from({ length: 10 }, (_, i) => appendNote(audit, { i })));
    expect(written.map((e) => e.seq).sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(await verifyLog({ evidenceDir: ev.evidenceDir })).toMatchObject({ ok: true, entries: 10 });
  });

  it('streams entries and stops at a malformed line with its line number', async () => {
    const audit = await openAuditLog({ evidenceDir: ev.evidenceDir, signingKeyPath: ev.signingKey });
    await appendNote(audit, { n: 1 });
    appendFileSync(auditLogPath(ev.evidenceDir), '{"not":"an entry"}\n');
    const seen: AuditEntry[] = [];
    const error = await rejection(
      (async () => {
        for await (const e of readRawEntries(ev.evidenceDir)) seen.push(e);
      })(),
    );
    expect(seen).toHaveLength(1);
    expect(error.exitCode).toBe(ExitCode.auditFailed);
    expect(error.message).toMatch(/line 2: not a valid audit entry/);
    expect(await collect(readRawEntries(path.join(ev.dir, 'nowhere')))).toEqual([]);
  });

  it('refuses to append after a cut-off last line, and says how to cut it back', async () => {
    const audit = await openAuditLog({ evidenceDir: ev.evidenceDir, signingKeyPath: ev.signingKey });
    await appendNote(audit, { n: 1 });
    const size = readFileSync(auditLogPath(ev.evidenceDir)).length;
    appendFileSync(auditLogPath(ev.evidenceDir), '{"body":{"n":');
    const error = await rejection(appendNote(audit, { n: 2 }));
    expect(error.exitCode).toBe(ExitCode.auditFailed);
    expect(error.message).toMatch(/incomplete line/);
    expect(error.hint).toContain(`truncate -s ${size} ${auditLogPath(ev.evidenceDir)}`);
  });

  it('fails with exit 5 naming the path and the OS error when the evidence directory cannot be written', async () => {
    const blocker = path.join(ev.dir, 'a-file');
    writeFileSync(blocker, 'not a directory');
    const evidenceDir = path.join(blocker, 'evidence');
    const error = await rejection(openAuditLog({ evidenceDir, signingKeyPath: ev.signingKey }));
    expect(error.exitCode).toBe(ExitCode.auditFailed);
    expect(error.message).toContain(evidenceDir);
    expect(error.message).toContain('ENOTDIR');
    expect(error.hint).toBeTruthy();
  });

  it('fails with exit 5 when audit.jsonl itself cannot be read or written', async () => {
    mkdirSync(auditLogPath(ev.evidenceDir), { recursive: true });
    const error = await rejection(openAuditLog({ evidenceDir: ev.evidenceDir, signingKeyPath: ev.signingKey }));
    expect(error.exitCode).toBe(ExitCode.auditFailed);
    expect(error.message).toContain(auditLogPath(ev.evidenceDir));
    expect(error.message).toContain('EISDIR');
  });

  it('fails with exit 2 and "run safe-run keygen" when the key is missing', async () => {
    const error = await rejection(openAuditLog({ evidenceDir: ev.evidenceDir, signingKeyPath: path.join(ev.dir, 'missing.key') }));
    expect(error.exitCode).toBe(ExitCode.usage);
    expect(error.hint).toMatch(/Run `safe-run keygen`/);
  });

  it('refuses a private key that others can read, naming the chmod to run', async () => {
    chmodSync(ev.signingKey, 0o644);
    const error = await rejection(openAuditLog({ evidenceDir: ev.evidenceDir, signingKeyPath: ev.signingKey }));
    expect(error.exitCode).toBe(ExitCode.usage);
    expect(`${error.message}\n${error.hint}`).toContain(`chmod 600 ${ev.signingKey}`);
    expect(error.message).toContain('0644');
    chmodSync(ev.signingKey, 0o640);
    expect((await rejection(openAuditLog({ evidenceDir: ev.evidenceDir, signingKeyPath: ev.signingKey }))).exitCode).toBe(ExitCode.usage);
  });

  it('refuses a private key inside the evidence directory', async () => {
    const inside = path.join(ev.evidenceDir, 'signing.key');
    const error = await rejection(generateSigningKey({ signingKeyPath: inside, evidenceDir: ev.evidenceDir }));
    expect(error.exitCode).toBe(ExitCode.usage);
    expect(error.message).toMatch(/inside the evidence directory/);
  });

  it('refuses to sign an existing log with a key that is not its current key', async () => {
    await appendNote(await openAuditLog({ evidenceDir: ev.evidenceDir, signingKeyPath: ev.signingKey }), {});
    const other = path.join(ev.dir, 'other', 'signing.key');
    await generateSigningKey({ signingKeyPath: other, evidenceDir: ev.evidenceDir });
    const error = await rejection(openAuditLog({ evidenceDir: ev.evidenceDir, signingKeyPath: other }));
    expect(error.exitCode).toBe(ExitCode.usage);
    expect(error.message).toContain(`key ${ev.keyId}`);
    expect(error.hint).toMatch(/keygen --rotate/);
  });

  it('never writes key material to the log or the logger', async () => {
    const log = recordingLogger();
    const audit = await openAuditLog({ evidenceDir: ev.evidenceDir, signingKeyPath: ev.signingKey, log });
    await appendNote(audit, {});
    const pem = readFileSync(ev.signingKey, 'utf8');
    const secret = pem.split('\n')[1]!;
    expect(readFileSync(auditLogPath(ev.evidenceDir), 'utf8')).not.toContain(secret);
    expect(log.text()).not.toContain(secret);
  });
});

describe('database chain-head anchor', () => {
  let t: TestDatabase;
  let ev: TestEvidence;
  beforeAll(async () => {
    t = await createTestDatabase('anchor');
  });
  afterAll(async () => {
    await t.drop();
  });
  beforeEach(async () => {
    ev = await createEvidence();
  });
  afterEach(async () => {
    await ev.cleanup();
  });

  it('creates safe_run.chain_head on first use and keeps the highest seq per log', async () => {
    // Its own database: the made-up logs anchored here would make the next test's log a fork.
    const own = await createTestDatabase('anchor');
    try {
      const anchor = databaseAnchor(own.db);
      expect(await anchor.read('nope')).toBeNull();
      await anchor.record('log-a', 5, 'h5');
      await anchor.record('log-a', 3, 'h3');
      await anchor.record('log-b', 1, 'b1');
      expect(await anchor.read('log-a')).toEqual({ seq: 5, hash: 'h5' });
      await anchor.record('log-a', 6, 'h6');
      expect(await anchor.read('log-a')).toEqual({ seq: 6, hash: 'h6' });
      expect(await anchor.read('log-b')).toEqual({ seq: 1, hash: 'b1' });
    } finally {
      await own.drop();
    }
  });

  it('is moved by every append, keyed by the hash of entry 1', async () => {
    const audit = await openAuditLog({ evidenceDir: ev.evidenceDir, signingKeyPath: ev.signingKey, anchor: databaseAnchor(t.db) });
    const first = await appendNote(audit, { n: 1 });
    await appendNote(audit, { n: 2 });
    // A new handle on the same log finds the log id from the file.
    const again = await openAuditLog({ evidenceDir: ev.evidenceDir, signingKeyPath: ev.signingKey, anchor: databaseAnchor(t.db) });
    const third = await appendNote(again, { n: 3 });
    const { rows } = await sql<{
      seq: number;
      hash: string;
    }>`select seq, hash from safe_run.chain_head where log_id = ${first.hash}`.execute(t.db);
    expect(rows).toEqual([{ seq: 3, hash: third.hash }]);
  });

  it('warns, and keeps the entry, when the anchor cannot be written', async () => {
    const gone = await createTestDatabase('gone');
    await gone.drop();
    const db = createDb(gone.url, { maxConnections: 1 });
    const log = recordingLogger();
    try {
      const audit = await openAuditLog({ evidenceDir: ev.evidenceDir, signingKeyPath: ev.signingKey, anchor: databaseAnchor(db), log });
      const entry = await appendNote(audit, { n: 1 });
      expect(entry.seq).toBe(1);
      expect(log.warnings.join('\n')).toMatch(/Could not record the audit chain head/);
      expect(logLines(ev.evidenceDir)).toHaveLength(1);
    } finally {
      await db.destroy();
    }
  });

  it('works on a fresh database where several first writers race to create the table', async () => {
    const fresh = await createTestDatabase('race');
    try {
      const pools = Array.from({ length: 6 }, () => createDb(fresh.url, { maxConnections: 1 }));
      await Promise.all(pools.map((db, i) => databaseAnchor(db).record(`log-${i}`, 1, `h${i}`)));
      await Promise.all(pools.map((db) => db.destroy()));
      expect(await databaseAnchor(fresh.db).read('log-5')).toEqual({ seq: 1, hash: 'h5' });
    } finally {
      await fresh.drop();
    }
  });
});
