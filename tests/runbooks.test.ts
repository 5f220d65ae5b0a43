import { execa } from 'execa';
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { RunResult } from '../src/run/types.js';
import { CLI_PATH, parseJson } from './helpers/cli.js';
import { repoRoot } from './helpers/constants.js';
import { emptyUsersOutsideAnyRun } from './helpers/incident.js';
import { createWorkspace, type Workspace } from './helpers/workspace.js';

/**
 * docs/runbooks/ is what an operator pastes at 3 a.m., so every `sh` block runs here, in
 * order, in one bash, against a fresh database and evidence directory, with `safe-run` on
 * PATH pointing at the built CLI. The conventions are the runbooks' own (docs/runbooks/README.md):
 * a trailing `# exit N` means the command must exit N; any other failure fails the runbook.
 */
const RUNBOOKS = path.join(repoRoot(), 'docs', 'runbooks');
const CONFIG = { criticalTables: { users: { maxDropPercent: 10 } }, backup: { scope: 'full' } };

async function guardedCleanup(ws: Workspace): Promise<void> {
  const run = parseJson<RunResult>(await ws.cli(['cleanup-invalid-sessions', '--json', '--reason', 'INC-1']));
  expect(run.status).toBe('committed');
}

async function snapshot(ws: Workspace, label: string): Promise<void> {
  expect((await ws.cli(['snapshot', '--label', label])).exitCode).toBe(0);
}

/** The situation each runbook is written for, arranged before its blocks run. */
const SITUATIONS: Readonly<Record<string, (ws: Workspace) => Promise<void>>> = {
  'cleanup-invalid-sessions.md': async () => {},
  'table-empty.md': async (ws) => {
    await guardedCleanup(ws);
    await emptyUsersOutsideAnyRun(ws.t.url);
  },
  'restore.md': async (ws) => {
    await guardedCleanup(ws);
    await emptyUsersOutsideAnyRun(ws.t.url);
  },
  'cron-drift-check.md': async (ws) => {
    await snapshot(ws, 'cron');
    await emptyUsersOutsideAnyRun(ws.t.url);
  },
  'run-failed.md': async (ws) => {
    ws.writeScript(
      'purge-stale-users.sql',
      '-- @description Deletes from a table it does not declare\n-- @touches oidc_models: delete\ndelete from users where is_active = false;\n',
    );
    expect((await ws.cli(['purge-stale-users', '--reason', 'INC-2'])).exitCode).toBe(3);
  },
  'verify-failed.md': async (ws) => {
    await snapshot(ws, 'before');
    const log = path.join(ws.evidenceDir, 'audit.jsonl');
    writeFileSync(log, readFileSync(log, 'utf8').replace('"label":"before"', '"label":"BEFORE"'));
  },
  'rotate-keys.md': async (ws) => snapshot(ws, 'before-key-rotation'),
};

interface Block {
  readonly line: number;
  readonly text: string;
}

export function shellBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  const fence = /^([ \t]*)```sh\n([\s\S]*?)^\1```[ \t]*$/gm;
  for (let m = fence.exec(markdown); m; m = fence.exec(markdown)) {
    const indent = m[1]!.length;
    const text = m[2]!
      .split('\n')
      .map((l) => l.slice(Math.min(indent, l.length - l.trimStart().length)))
      .join('\n');
    blocks.push({ line: markdown.slice(0, m.index).split('\n').length + 1, text });
  }
  return blocks;
}

/** `cmd   # exit 10: …` must exit 10: run it with -e off, then compare. */
const EXPECTED_EXIT = /^(\s*)(\S.*?)\s+#\s*exit (\d+)\b.*$/;

export function runbookScript(file: string, blocks: readonly Block[]): string {
  const lines = ['set -euo pipefail', "PS4='+ '", 'set -x'];
  for (const block of blocks) {
    lines.push(`{ set +x; } 2>/dev/null; echo "--- ${file}:${block.line}" >&2; set -x`);
    block.text.split('\n').forEach((line, i) => {
      const m = EXPECTED_EXIT.exec(line);
      if (!m) return void lines.push(line);
      const where = `${file}:${block.line + i}`;
      lines.push(
        `${m[1]}set +e; ${m[2]}; __rc=$?; set -e; if [ "$__rc" != ${m[3]} ]; then echo "${where}: expected exit ${m[3]}, got $__rc" >&2; exit 99; fi`,
      );
    });
  }
  return `${lines.join('\n')}\n`;
}

const files = readdirSync(RUNBOOKS)
  .filter((f) => f.endsWith('.md') && f !== 'README.md')
  .sort();

describe('runbooks', () => {
  it('lists every runbook in the index, and has a situation for each', () => {
    const index = readFileSync(path.join(RUNBOOKS, 'README.md'), 'utf8');
    for (const f of files) expect(index).toContain(`](${f})`);
    expect(Object.keys(SITUATIONS).sort()).toEqual(files);
  });

  it('marks an expected exit and keeps plain lines as they are', () => {
    const script = runbookScript('x.md', [{ line: 3, text: 'safe-run check   # exit 10: drift\nsafe-run blame users' }]);
    expect(script).toContain('set +e; safe-run check; __rc=$?; set -e; if [ "$__rc" != 10 ]');
    expect(script).toContain('x.md:3: expected exit 10');
    expect(script).toContain('\nsafe-run blame users\n');
  });

  describe.each(files)('%s', (file) => {
    let ws: Workspace;
    beforeEach(async () => {
      ws = await createWorkspace(CONFIG);
    });
    afterEach(async () => {
      await ws.cleanup();
    });

    it('runs every sh block, in order, against a fresh database', async () => {
      const blocks = shellBlocks(readFileSync(path.join(RUNBOOKS, file), 'utf8'));
      expect(blocks.length).toBeGreaterThan(0);
      await SITUATIONS[file]!(ws);
      const bin = path.join(ws.cwd, 'bin');
      mkdirSync(bin);
      writeFileSync(path.join(bin, 'safe-run'), `#!/bin/sh\nexec "${process.execPath}" "${CLI_PATH}" "$@"\n`);
      chmodSync(path.join(bin, 'safe-run'), 0o755);
      const result = await execa('bash', ['-c', runbookScript(file, blocks)], {
        cwd: ws.cwd,
        env: { ...ws.env, PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}` },
        reject: false,
        all: true,
      });
      if (result.exitCode !== 0) throw new Error(`${file} failed (exit ${result.exitCode}):\n${String(result.all).slice(-6000)}`);
    }, 180_000);
  });
});
