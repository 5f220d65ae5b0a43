import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { generateSigningKey } from '../src/audit/keys.js';
import type { Config } from '../src/config/config.js';
import { loadConfig } from '../src/config/load.js';
import { createDb } from '../src/db/connection.js';
import { errorCode } from '../src/errors.js';

/**
 * A temp directory per bench run holding the evidence, the signing key and a config, so
 * the bench never signs with or writes into an operator's real evidence. Paths are found
 * from the compiled file, so the same code works from dist/ and from any other outDir.
 */
const here = path.dirname(fileURLToPath(import.meta.url));

/** The package root: the nearest directory above the compiled file with safe-run's package.json. */
export const packageRoot = ((): string => {
  for (let dir = here; ; dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'safe-run') return dir;
    if (path.dirname(dir) === dir) throw new Error(`no safe-run package.json above ${here}`);
  }
})();

/**
 * The command an operator runs, `safe-run` as npm links it: bin/safe-run, which starts the CLI
 * built with this very bench (<outDir>/src/cli.js) as the operator's shell would.
 */
export const binPath = path.join(packageRoot, 'bin', 'safe-run');

export const cleanupScriptPath = path.join(packageRoot, 'scripts', 'cleanup-invalid-sessions.ts');

export interface Workspace {
  readonly dir: string;
  readonly evidenceDir: string;
  readonly signingKey: string;
  readonly configFile: string;
  /** The environment a CLI child needs: the key and the database, nothing from the operator's setup. */
  env(url: string): Record<string, string>;
  config(url: string, overrides?: Record<string, unknown>): Promise<Config>;
  /** Deletes the directory and the anchors its log left in the databases it was used on. */
  remove(): Promise<void>;
}

export async function createWorkspace(name: string): Promise<Workspace> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `safe-run-bench-${name}-`));
  const evidenceDir = path.join(dir, 'evidence');
  const signingKey = path.join(dir, 'signing.key');
  await generateSigningKey({ signingKeyPath: signingKey, evidenceDir });
  const configFile = path.join(dir, 'safe-run.config.json');
  const write = (overrides: Record<string, unknown>): void =>
    writeFileSync(
      configFile,
      JSON.stringify(
        {
          scriptsDir: path.join(packageRoot, 'scripts'),
          evidenceDir,
          signingKey,
          criticalTables: { users: { maxDropPercent: 10 } },
          ...overrides,
        },
        null,
        2,
      ),
    );
  write({});
  const used = new Set<string>();
  const use = (url: string): string => {
    used.add(url);
    return url;
  };
  return {
    dir,
    evidenceDir,
    signingKey,
    configFile,
    env: (url) => ({ DATABASE_URL: use(url), SAFE_RUN_SIGNING_KEY: signingKey, SAFE_RUN_EVIDENCE_DIR: evidenceDir }),
    config: async (url, overrides = {}) => {
      write(overrides);
      return loadConfig({ configPath: configFile, db: use(url), cwd: dir, env: {} });
    },
    remove: async () => {
      for (const url of used) await forgetAnchors(url, dir);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Each workspace keeps its own log, but a database anchors the one log written to it
 * (anchor identity): a later workspace on the same bench database would be refused as
 * "not where that log is kept". Forgetting this workspace's anchors when it goes lets the
 * next one start a log of its own, as an operator would after `safe-run init` elsewhere.
 */
async function forgetAnchors(url: string, dir: string): Promise<void> {
  const db = createDb(url);
  try {
    await sql`
      delete from safe_run.chain_head where position(${dir} in evidence_dir) > 0
    `.execute(db);
  } catch (error) {
    // No safe_run schema yet, or the database or the throwaway server already gone: nothing anchored.
    if (!['42P01', '3D000', 'ECONNREFUSED'].includes(errorCode(error) ?? '')) throw error;
  } finally {
    await db.destroy();
  }
}
