import { createPublicKey } from 'node:crypto';
import { execa } from 'execa';
import { chmodSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { addSigningKey } from '../src/audit/add-key.js';
import { generateSigningKey, keyFingerprint, publicKeyPath } from '../src/audit/keys.js';
import { verifyLog } from '../src/audit/verify.js';
import { useEvidenceStore } from '../src/commands/context.js';
import { recordSnapshot } from '../src/commands/snapshot.js';
import { loadConfig } from '../src/config/load.js';
import type { Config } from '../src/config/config.js';
import { silentLogger } from '../src/logger.js';
import { CLI_PATH } from './helpers/cli.js';
import { SCRIPTS_DIR } from './helpers/constants.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { createEvidence, type TestEvidence } from './helpers/evidence.js';
import { createEvidenceDatabase, storedLines, type EvidenceDatabase } from './helpers/evidence-store.js';

const srcDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src');
const moduleUrl = (file: string): string => pathToFileURL(path.join(srcDir, file)).href;

const HOSTS = 8;
const ENTRIES_EACH = 50;
/** One guarded run (intent, outcome, post) per host, on its own target; the rest are snapshots. */
const SNAPSHOTS_EACH = ENTRIES_EACH - 3;

/**
 * One host: its own key and evidence directories, one config per target, all on the shared
 * store. It takes real snapshots round-robin over the 8 targets (so every chain has 8 hosts
 * queueing on its head) and, halfway, one guarded run of its own target through the CLI.
 */
const HOST = `
import { execFile } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { useEvidenceStore } from ${JSON.stringify(moduleUrl('commands/context.js'))};
import { recordSnapshot } from ${JSON.stringify(moduleUrl('commands/snapshot.js'))};
import { loadConfig } from ${JSON.stringify(moduleUrl('config/load.js'))};
import { createDb } from ${JSON.stringify(moduleUrl('db/connection.js'))};
import { silentLogger } from ${JSON.stringify(moduleUrl('logger.js'))};
const [hostDir, signingKey, storeUrl, targetsJson, goFile, host, snapshots, cli] = process.argv.slice(2);
const targets = JSON.parse(targetsJson);
const envFor = (i) => ({ ...process.env, SAFE_RUN_EVIDENCE_DIR: path.join(hostDir, 'ev-' + i), SAFE_RUN_SIGNING_KEY: signingKey, SAFE_RUN_EVIDENCE_STORE: storeUrl });
const configs = [];
for (let i = 0; i < targets.length; i++) {
  configs.push(await loadConfig({ cwd: hostDir, env: envFor(i), db: targets[i].url }));
  await useEvidenceStore(configs[i]);
}
const live = targets.map((t) => ({ db: createDb(t.url, { maxConnections: 1 }), url: new URL(t.url) }));
const report = { snapshots: [], runId: null };
writeFileSync(goFile + '.ready-' + host, '');
while (!existsSync(goFile)) await new Promise((r) => setTimeout(r, 5));
try {
  for (let j = 0; j < Number(snapshots); j++) {
    if (j === Math.floor(Number(snapshots) / 2)) {
      const me = Number(host);
      const { stdout } = await promisify(execFile)(process.execPath, [cli, 'cleanup-invalid-sessions', '--json'], {
        cwd: hostDir, env: { ...envFor(me), DATABASE_URL: targets[me].url },
      });
      report.runId = JSON.parse(stdout).runId;
    }
    const i = (Number(host) + j) % targets.length;
    const label = 'host' + host + '-' + j;
    const r = await recordSnapshot(configs[i], { label }, live[i], silentLogger);
    report.snapshots.push({ database: targets[i].name, seq: r.seq, hash: r.hash, label });
  }
} finally {
  for (const l of live) await l.db.destroy();
}
writeFileSync(path.join(hostDir, 'report.json'), JSON.stringify(report));
`;

interface HostReport {
  readonly snapshots: readonly { readonly database: string; readonly seq: number; readonly hash: string; readonly label: string }[];
  readonly runId: string;
}

describe('8 hosts appending to 8 target chains in one evidence store', () => {
  let store: EvidenceDatabase;
  let targets: TestDatabase[];
  let admin: TestEvidence;
  beforeAll(async () => {
    store = await createEvidenceDatabase();
    targets = [];
    for (let i = 0; i < HOSTS; i++) targets.push(await createTestDatabase('host'));
    admin = await createEvidence();
    // A guarded run's TypeScript child runs as "nobody" when the tests run as root: it must reach its cwd.
    chmodSync(admin.dir, 0o755);
  }, 120_000);
  afterAll(async () => {
    await admin.cleanup();
    for (const t of targets) await t.drop();
    await store.drop();
  });

  it(`gives ${HOSTS} intact chains with every host's ${ENTRIES_EACH} entries, none lost or doubled`, async () => {
    const pinned = keyFingerprint(createPublicKey(readFileSync(admin.signingKey)));
    // The admin's key (pinned by every host's trustedKeys) starts each chain and introduces the hosts' keys.
    const hostKeys: { dir: string; key: string; keyId: string }[] = [];
    for (let h = 0; h < HOSTS; h++) {
      const dir = path.join(admin.dir, `host-${h}`);
      mkdirSync(dir, { recursive: true });
      chmodSync(dir, 0o755);
      writeFileSync(path.join(dir, 'safe-run.config.json'), JSON.stringify({ scriptsDir: [SCRIPTS_DIR()], trustedKeys: [pinned] }));
      const key = path.join(dir, 'private', 'signing.key');
      const { keyId } = await generateSigningKey({ signingKeyPath: key, evidenceDir: path.join(dir, 'own') });
      hostKeys.push({ dir, key, keyId });
    }
    const adminConfigs: Config[] = [];
    for (const [i, t] of targets.entries()) {
      const env = {
        ...process.env,
        SAFE_RUN_EVIDENCE_DIR: path.join(admin.dir, `admin-${i}`),
        SAFE_RUN_SIGNING_KEY: admin.signingKey,
        SAFE_RUN_EVIDENCE_STORE: store.writerUrl,
      };
      const config = await loadConfig({ cwd: admin.dir, env, db: t.url });
      await useEvidenceStore(config);
      adminConfigs.push(config);
      await recordSnapshot(config, { label: 'genesis' }, { db: t.db, url: new URL(t.url) }, silentLogger);
      for (const h of hostKeys) {
        const paths = { signingKeyPath: admin.signingKey, evidenceDir: config.evidenceDir, log: silentLogger };
        await addSigningKey({ ...paths, publicKeyFile: publicKeyPath(path.join(h.dir, 'own'), h.keyId) });
      }
    }

    const script = path.join(admin.dir, 'host.mjs');
    const goFile = path.join(admin.dir, 'go');
    writeFileSync(script, HOST);
    const targetList = JSON.stringify(targets.map((t) => ({ name: t.name, url: t.url })));
    const children = hostKeys.map((h, n) =>
      execa(process.execPath, [script, h.dir, h.key, store.writerUrl, targetList, goFile, String(n), String(SNAPSHOTS_EACH), CLI_PATH], {
        reject: false,
      }),
    );
    // All hosts set up (configs read, pools open) before any appends, so the appends really overlap.
    const deadline = Date.now() + 120_000;
    while (readdirSync(admin.dir).filter((f) => f.startsWith('go.ready-')).length < HOSTS) {
      if (Date.now() > deadline) throw new Error('the hosts never became ready');
      await new Promise((r) => setTimeout(r, 20));
    }
    writeFileSync(goFile, '');
    const results = await Promise.all(children);
    for (const r of results) expect({ exitCode: r.exitCode, stderr: r.stderr }).toEqual({ exitCode: 0, stderr: '' });

    const reports = hostKeys.map((h) => JSON.parse(readFileSync(path.join(h.dir, 'report.json'), 'utf8')) as HostReport);
    const chains = await storedLines(store.db);
    expect(chains.size).toBe(HOSTS);
    for (const [i, t] of targets.entries()) {
      const verified = await verifyLog({ evidenceDir: adminConfigs[i]!.evidenceDir, trustedKeys: [pinned] });
      expect(verified).toMatchObject({ ok: true, trust: { mode: 'pinned' } });
      const entries = chains.get(t.name)!.map((l) => JSON.parse(l) as { seq: number; hash: string; keyId: string; runId?: string });
      const mine = reports.flatMap((r) => r.snapshots.filter((s) => s.database === t.name));
      // Genesis, 8 key.add, the hosts' snapshots of this target, and its host's one run.
      expect(entries).toHaveLength(1 + HOSTS + mine.length + 3);
      expect(verified.entries).toBe(entries.length);
      const bySeq = new Map(entries.map((e) => [e.seq, e]));
      for (const s of mine) expect(bySeq.get(s.seq)?.hash).toBe(s.hash);
      expect(entries.filter((e) => e.runId === reports[i]!.runId).map((e) => e.keyId)).toEqual(Array(3).fill(hostKeys[i]!.keyId));
    }
    // Every host's entries, each exactly once.
    for (const [h, r] of reports.entries()) {
      expect(new Set(r.snapshots.map((s) => s.label)).size).toBe(SNAPSHOTS_EACH);
      expect(r.snapshots.length + 3).toBe(ENTRIES_EACH);
      const signed = [...chains.values()].flat().filter((l) => JSON.parse(l).keyId === hostKeys[h]!.keyId);
      expect(signed).toHaveLength(ENTRIES_EACH);
    }
  }, 600_000);
});
