import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from './helpers/cli.js';
import { countRows } from './helpers/db.js';
import { createWorkspace, type Workspace } from './helpers/workspace.js';

/**
 * A full disk under the evidence directory, for real: a 64 KiB tmpfs. Needs root (CI and
 * sessions here are root); elsewhere the test is skipped rather than faked.
 */
function mountTinyTmpfs(): string | null {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'safe-run-tiny-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'ignore' });
    return dir;
  } catch {
    rmSync(dir, { recursive: true, force: true });
    return null;
  }
}

const tiny = mountTinyTmpfs();
const itWithTmpfs = tiny ? it : it.skip;

describe('a full disk under the evidence directory', () => {
  let ws: Workspace;
  beforeAll(async () => {
    ws = await createWorkspace();
  });
  afterAll(async () => {
    await ws.cleanup();
    if (tiny) {
      execFileSync('umount', [tiny]);
      rmSync(tiny, { recursive: true, force: true });
    }
  });

  itWithTmpfs('stops before the script with exit 5, no half-written line and no orphan backup', async () => {
    cpSync(path.join(ws.evidenceDir, 'keys'), path.join(tiny!, 'keys'), { recursive: true });
    // Room for the backup (about 4 KiB), not for the intent entry after it.
    writeFileSync(path.join(tiny!, 'filler'), Buffer.alloc(56 * 1024));
    const before = await countRows(ws.t.db, 'oidc_models');
    const result = await runCli(['cleanup-invalid-sessions'], { cwd: ws.cwd, env: { ...ws.env, SAFE_RUN_EVIDENCE_DIR: tiny! } });
    expect(result.exitCode).toBe(5);
    expect(result.stderr).toContain('ENOSPC');
    expect(await countRows(ws.t.db, 'oidc_models')).toBe(before);
    expect(readFileSync(path.join(tiny!, 'audit.jsonl'), 'utf8')).toBe('');
    expect(readdirSync(path.join(tiny!, 'backups'))).toEqual([]);
  });
});
