import { execa } from 'execa';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { databaseAnchor, openAuditLog, type AuditLog } from '../../src/audit/log.js';
import { configureEvidenceStore } from '../../src/audit/store.js';
import { databaseStore } from '../../src/audit/store-pg.js';
import { verifyLog } from '../../src/audit/verify.js';
import { useEvidenceStore } from '../../src/commands/context.js';
import { createDb } from '../../src/db/connection.js';
import { readLiveSnapshot } from '../../src/history/live.js';
import type { Snapshot } from '../../src/records/index.js';
import { dropBenchDatabase, freshBenchDatabase } from '../data.js';
import { alternate, progress, type SideSamples } from '../measure.js';
import { createWorkspace } from '../workspace.js';

/**
 * The shared evidence store (issue 16 part 1): appends per second from one host, the file
 * log beside it in the same rounds, and the throughput of 8 processes appending at once to
 * 8 chains in one store (each append waits for the chain head's row lock).
 */
const DB_NAME = 'safe_run_bench_evidence';
const HOSTS = 8;

export interface StoreBench {
  readonly appendsPerRound: number;
  readonly sides: readonly SideSamples[];
  /** Median of the database store's rounds, entries per second. */
  readonly storeAppendPerS: number;
  readonly fileAppendPerS: number;
  readonly hosts: {
    readonly processes: number;
    readonly chains: number;
    readonly entriesEach: number;
    readonly wallMs: number;
    readonly entriesPerS: number;
    readonly chainsVerified: boolean;
  };
}

export async function measureEvidenceStore(demoUrl: string, rounds: number, quick: boolean): Promise<StoreBench> {
  const storeUrl = await freshBenchDatabase(demoUrl, DB_NAME);
  const live = { db: createDb(demoUrl, { maxConnections: 2 }), url: new URL(demoUrl) };
  const fileWs = await createWorkspace('store-file');
  const storeWs = await createWorkspace('store-db');
  try {
    const fileConfig = await fileWs.config(demoUrl);
    const storeConfig = await storeWs.config(demoUrl, { evidence: { store: storeUrl } });
    await useEvidenceStore(storeConfig);
    // One real snapshot of the demo database: every appended entry carries it, as `snapshot` does.
    const snapshot = await readLiveSnapshot(live, fileConfig);
    const open = (c: typeof fileConfig): Promise<AuditLog> =>
      openAuditLog({ evidenceDir: c.evidenceDir, signingKeyPath: c.signingKey, anchor: databaseAnchor(live.db) });
    const [fileLog, storeLog] = [await open(fileConfig), await open(storeConfig)];
    const appends = quick ? 200 : 500;
    const side = (name: string, audit: AuditLog) => ({
      name,
      run: async () => {
        const started = performance.now();
        for (let i = 0; i < appends; i++) await audit.append('snapshot', { label: `bench ${i}`, snapshot });
        return performance.now() - started;
      },
    });
    const sides = await alternate([side('file audit.jsonl', fileLog), side('evidence store', storeLog)], {
      rounds,
      label: `${appends} appends`,
    });
    const perS = (name: string): number => appends / (sides.find((s) => s.name === name)!.medianMs / 1000);
    const hosts = await measureHosts(storeUrl, storeWs.dir, storeWs.signingKey, snapshot, quick ? 100 : 200);
    return {
      appendsPerRound: appends,
      sides,
      storeAppendPerS: perS('evidence store'),
      fileAppendPerS: perS('file audit.jsonl'),
      hosts,
    };
  } finally {
    await live.db.destroy();
    await fileWs.remove();
    await storeWs.remove();
    await dropBenchDatabase(demoUrl, DB_NAME);
  }
}

const srcDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src');
const moduleUrl = (file: string): string => pathToFileURL(path.join(srcDir, file)).href;

/**
 * One host: a chain per bench target (keyed by a made-up system identifier: the store only
 * needs a key, and 8 real databases would measure CREATE DATABASE), appended round-robin.
 */
const HOST = `
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { openAuditLog } from ${JSON.stringify(moduleUrl('audit/log.js'))};
import { configureEvidenceStore } from ${JSON.stringify(moduleUrl('audit/store.js'))};
import { databaseStore } from ${JSON.stringify(moduleUrl('audit/store-pg.js'))};
import { createDb } from ${JSON.stringify(moduleUrl('db/connection.js'))};
const [dir, signingKeyPath, storeUrl, host, chains, count, bodyFile] = process.argv.slice(2);
const body = JSON.parse(readFileSync(bodyFile, 'utf8'));
const db = createDb(storeUrl, { maxConnections: 1 });
const logs = [];
for (let i = 0; i < Number(chains); i++) {
  const evidenceDir = path.join(dir, 'host-' + host, 'chain-' + i);
  const target = async () => ({ systemIdentifier: 'bench', databaseName: 'bench_target_' + i });
  configureEvidenceStore(evidenceDir, databaseStore({ db, where: 'bench store', target }));
  logs.push(await openAuditLog({ evidenceDir, signingKeyPath }));
}
writeFileSync(path.join(dir, 'go.ready-' + host), '');
while (!existsSync(path.join(dir, 'go'))) await new Promise((r) => setTimeout(r, 2));
const started = Date.now();
for (let j = 0; j < Number(count); j++) await logs[(Number(host) + j) % logs.length].append('snapshot', { label: host + '-' + j, snapshot: body });
writeFileSync(path.join(dir, 'host-' + host + '.json'), JSON.stringify({ started, ended: Date.now() }));
await db.destroy();
`;

async function measureHosts(
  storeUrl: string,
  dir: string,
  signingKey: string,
  snapshot: Snapshot,
  entriesEach: number,
): Promise<StoreBench['hosts']> {
  const work = path.join(dir, 'hosts');
  mkdirSync(work, { recursive: true });
  writeFileSync(path.join(work, 'host.mjs'), HOST);
  writeFileSync(path.join(work, 'body.json'), JSON.stringify(snapshot));
  // Entry 1 of each chain first, so that every host finds a chain its key already signs.
  const db = createDb<Record<string, never>>(storeUrl, { maxConnections: 1 });
  const chainDirs = Array.from({ length: HOSTS }, (_, i) => path.join(work, `verify-${i}`));
  for (const [i, evidenceDir] of chainDirs.entries()) {
    const target = async () => ({ systemIdentifier: 'bench', databaseName: `bench_target_${i}` });
    configureEvidenceStore(evidenceDir, databaseStore({ db, where: 'bench store', target }));
    await (await openAuditLog({ evidenceDir, signingKeyPath: signingKey })).append('snapshot', { label: 'genesis', snapshot });
  }
  const children = Array.from({ length: HOSTS }, (_, h) =>
    execa(
      process.execPath,
      [
        path.join(work, 'host.mjs'),
        work,
        signingKey,
        storeUrl,
        String(h),
        String(HOSTS),
        String(entriesEach),
        path.join(work, 'body.json'),
      ],
      {
        reject: false,
      },
    ),
  );
  const deadline = Date.now() + 120_000;
  while (readdirSync(work).filter((f) => f.startsWith('go.ready-')).length < HOSTS) {
    if (Date.now() > deadline) throw new Error('the 8 host processes never became ready');
    await new Promise((r) => setTimeout(r, 10));
  }
  writeFileSync(path.join(work, 'go'), '');
  for (const r of await Promise.all(children)) if (r.exitCode !== 0) throw new Error(`a host process failed: ${r.stderr.slice(0, 300)}`);
  const spans = Array.from(
    { length: HOSTS },
    (_, h) => JSON.parse(readFileSync(path.join(work, `host-${h}.json`), 'utf8')) as { started: number; ended: number },
  );
  const wallMs = Math.max(...spans.map((s) => s.ended)) - Math.min(...spans.map((s) => s.started));
  let chainsVerified = true;
  for (const evidenceDir of chainDirs) {
    const result = await verifyLog({ evidenceDir, signatures: 'head' });
    if (!result.ok || result.entries !== 1 + entriesEach) chainsVerified = false;
  }
  await db.destroy();
  progress(`  ${HOSTS} processes x ${entriesEach} appends over ${HOSTS} chains: ${wallMs} ms, chains verify: ${chainsVerified}`);
  return { processes: HOSTS, chains: HOSTS, entriesEach, wallMs, entriesPerS: (HOSTS * entriesEach) / (wallMs / 1000), chainsVerified };
}
