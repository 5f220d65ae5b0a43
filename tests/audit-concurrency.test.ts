import { execa } from 'execa';
import { readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { databaseAnchor } from '../src/audit/anchor.js';
import { readRawEntries } from '../src/audit/read.js';
import { verifyLog } from '../src/audit/verify.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { createEvidence, type TestEvidence } from './helpers/evidence.js';

// The compiled modules next to this compiled test: <dist>/tests -> <dist>/src.
const srcDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src');
const moduleUrl = (file: string): string => pathToFileURL(path.join(srcDir, file)).href;

const PROCESSES = 20;
const APPENDS_EACH = 5;

/**
 * A separate node process per writer, as a cron `snapshot` and a guarded run would be. They
 * all report ready, then wait for a go-file, so that their appends really overlap.
 */
const WRITER = `
import { existsSync, writeFileSync } from 'node:fs';
import { databaseAnchor, openAuditLog } from ${JSON.stringify(moduleUrl('audit/log.js'))};
import { createDb } from ${JSON.stringify(moduleUrl('db/connection.js'))};
const [evidenceDir, signingKeyPath, dbUrl, goFile, who, count] = process.argv.slice(2);
const db = createDb(dbUrl, { maxConnections: 1 });
try {
  const audit = await openAuditLog({ evidenceDir, signingKeyPath, anchor: databaseAnchor(db) });
  writeFileSync(\`\${goFile}.ready-\${who}\`, '');
  while (!existsSync(goFile)) await new Promise((r) => setTimeout(r, 5));
  for (let i = 0; i < Number(count); i++) await audit.append('test.note', { who, i }, { runId: who });
} finally {
  await db.destroy();
}
`;

describe('appends from many processes at once', () => {
  let t: TestDatabase;
  let ev: TestEvidence;
  beforeAll(async () => {
    t = await createTestDatabase('concurrent');
    ev = await createEvidence();
  });
  afterAll(async () => {
    await ev.cleanup();
    await t.drop();
  });

  it(`keeps ${PROCESSES} concurrent writers in one linear chain with every entry present`, async () => {
    const script = path.join(ev.dir, 'writer.mjs');
    const goFile = path.join(ev.dir, 'go');
    writeFileSync(script, WRITER);
    const children = Array.from({ length: PROCESSES }, (_, n) =>
      execa(process.execPath, [script, ev.evidenceDir, ev.signingKey, t.url, goFile, `writer-${n}`, String(APPENDS_EACH)], {
        reject: false,
      }),
    );
    // A writer that dies before it is ready shows up in the exit codes below; don't wait for it forever.
    const deadline = Date.now() + 90_000;
    while (readdirSync(ev.dir).filter((f) => f.startsWith('go.ready-')).length < PROCESSES && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    writeFileSync(goFile, '');
    const results = await Promise.all(children);
    for (const r of results) expect({ exitCode: r.exitCode, stderr: r.stderr }).toEqual({ exitCode: 0, stderr: '' });

    const total = PROCESSES * APPENDS_EACH;
    const result = await verifyLog({ evidenceDir: ev.evidenceDir, anchor: databaseAnchor(t.db) });
    expect(result).toMatchObject({ ok: true, entries: total, head: { seq: total } });
    // Every writer's anchor update kept the highest seq, whatever order they landed in.
    expect(result.anchor).toEqual(result.head);

    const seen = new Set<string>();
    for await (const entry of readRawEntries(ev.evidenceDir)) {
      const { who, i } = entry.body as { who: string; i: number };
      seen.add(`${who}/${i}`);
    }
    expect(seen.size).toBe(total);
    for (let n = 0; n < PROCESSES; n++) for (let i = 0; i < APPENDS_EACH; i++) expect(seen.has(`writer-${n}/${i}`)).toBe(true);
  }, 180_000);
});
