import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli, type CliResult } from './cli.js';
import { SCRIPTS_DIR } from './constants.js';
import { createTestDatabase, type TestDatabase } from './db.js';
import { createEvidence } from './evidence.js';

/**
 * Everything one guarded-run test needs: its own database cloned from the seeded template,
 * an evidence dir with a fresh key, a working directory with a config, and a directory for
 * the test's own scripts (searched before the repository's scripts/).
 */
export interface Workspace {
  readonly t: TestDatabase;
  readonly cwd: string;
  readonly scriptsDir: string;
  readonly evidenceDir: string;
  /** The private key, outside the evidence dir (mode 0600). */
  readonly signingKey: string;
  readonly env: Record<string, string>;
  cli(args: readonly string[]): Promise<CliResult>;
  writeScript(file: string, source: string): void;
  writeConfig(config: Record<string, unknown>): void;
  cleanup(): Promise<void>;
}

export async function createWorkspace(config: Record<string, unknown> = {}): Promise<Workspace> {
  const t = await createTestDatabase();
  const evidence = await createEvidence();
  const cwd = mkdtempSync(path.join(os.tmpdir(), 'safe-run-ws-'));
  const scriptsDir = path.join(cwd, 'scripts');
  mkdirSync(scriptsDir);
  // A TypeScript script's child runs as "nobody" when the tests run as root: it must read the
  // scripts, but not the evidence dir or the key, which keep mkdtemp's 0700.
  chmodSync(cwd, 0o755);
  chmodSync(scriptsDir, 0o755);
  const env = { ...evidence.env, DATABASE_URL: t.url };
  const writeConfig = (extra: Record<string, unknown>): void =>
    writeFileSync(path.join(cwd, 'safe-run.config.json'), JSON.stringify({ scriptsDir: [scriptsDir, SCRIPTS_DIR()], ...extra }, null, 2));
  writeConfig(config);
  return {
    t,
    cwd,
    scriptsDir,
    evidenceDir: evidence.evidenceDir,
    signingKey: evidence.signingKey,
    env,
    cli: (args) => runCli(args, { cwd, env }),
    writeScript: (file, source) => writeFileSync(path.join(scriptsDir, file), source),
    writeConfig,
    cleanup: async () => {
      await t.drop();
      await evidence.cleanup();
      rmSync(cwd, { recursive: true, force: true });
    },
  };
}
