import { existsSync } from 'node:fs';
import path from 'node:path';
import type { BackupsResult } from '../src/commands/backups.js';
import type { PruneResult } from '../src/restore/prune.js';
import type { RunResult } from '../src/run/types.js';
import { parseJson } from './helpers/cli.js';
import { createWorkspace, type Workspace } from './helpers/workspace.js';

const RENAME = `
import { defineScript, sql } from 'safe-run';
export default defineScript({
  name: 'rename-users',
  description: 'updates one user',
  touches: { users: ['update'] },
  async run({ db }) {
    await sql\`update users set name = name || '.' where email = 'free.user@example.com'\`.execute(db);
  },
});
`;

/** backups and prune over real runs' real archives. */
describe('safe-run backups and prune', () => {
  let ws: Workspace;
  const runs: RunResult[] = [];
  const cleanup = async (): Promise<RunResult> => parseJson<RunResult>(await ws.cli(['cleanup-invalid-sessions', '--json']));

  beforeAll(async () => {
    ws = await createWorkspace({ criticalTables: { users: { maxDropPercent: 10 } } });
    ws.writeScript('rename-users.ts', RENAME);
    runs.push(await cleanup());
    runs.push(parseJson<RunResult>(await ws.cli(['rename-users', '--json'])));
    runs.push(await cleanup());
    runs.push(await cleanup());
    for (const r of runs) expect(r.backup.status).toBe('verified');
  }, 240_000);
  afterAll(async () => {
    await ws.cleanup();
  });

  it('lists every backup, newest first, verified against its signed hash', async () => {
    const listed = parseJson<BackupsResult>(await ws.cli(['backups', '--json']));
    expect(listed.backups.map((b) => b.runId)).toEqual(runs.map((r) => r.runId).reverse());
    expect(listed.backups.every((b) => b.verified === true && b.pruned === null)).toBe(true);
    expect(listed.backups[0]!.tables).toContain('public.users');
  });

  it('prune --keep 1 keeps the newest backup of each script, records a signed entry, and keeps verify passing', async () => {
    const [oldCleanup, rename, middleCleanup, newest] = runs as [RunResult, RunResult, RunResult, RunResult];
    const dry = parseJson<PruneResult>(await ws.cli(['prune', '--keep', '1', '--dry-run', '--json']));
    expect(dry.pruned.map((p) => p.runId).sort()).toEqual([oldCleanup.runId, middleCleanup.runId].sort());
    expect(existsSync(path.join(ws.evidenceDir, oldCleanup.backup.path!))).toBe(true);

    const result = await ws.cli(['prune', '--keep', '1', '--json']);
    expect(result.exitCode).toBe(0);
    const pruned = parseJson<PruneResult>(result);
    expect(pruned.pruned.map((p) => p.runId).sort()).toEqual([oldCleanup.runId, middleCleanup.runId].sort());
    expect(pruned.protected).toEqual([{ runId: rename.runId, why: 'newest backup of rename-users' }]);
    expect(existsSync(path.join(ws.evidenceDir, oldCleanup.backup.path!))).toBe(false);
    expect(existsSync(path.join(ws.evidenceDir, newest.backup.path!))).toBe(true);
    expect(existsSync(path.join(ws.evidenceDir, rename.backup.path!))).toBe(true);
    expect((await ws.cli(['verify'])).exitCode).toBe(0);

    const show = await ws.cli(['show', oldCleanup.runId]);
    expect(show.stdout).toContain(`PRUNED at`);
    expect(show.stdout).toContain(`signed prune entry #${pruned.entry!.seq}`);
    const restore = await ws.cli(['restore', oldCleanup.runId, '--in-place', '--table', 'users']);
    expect(restore.exitCode).toBe(4);
    expect(restore.stderr).toContain('was pruned at');

    const listed = parseJson<BackupsResult>(await ws.cli(['backups', '--json']));
    expect(listed.backups.find((b) => b.runId === oldCleanup.runId)?.pruned?.seq).toBe(pruned.entry!.seq);
    expect(listed.backups.find((b) => b.runId === newest.runId)?.verified).toBe(true);
  }, 240_000);
});
