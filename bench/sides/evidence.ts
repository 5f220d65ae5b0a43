import { statSync } from 'node:fs';
import type { VerifyResult } from '../../src/audit/types.js';
import { verifyLog } from '../../src/audit/verify.js';
import { silentLogger } from '../../src/logger.js';
import { withTarget } from '../../src/db/target.js';
import { runGuarded } from '../../src/run/pipeline.js';
import { readRunTemplate, SyntheticHistory, type RunTemplate } from '../history.js';
import { median, progress, timeMs } from '../measure.js';
import { appendThroughApi, writeSignedBulk } from '../signed-log.js';
import { describeFailure, runCli, type CliRun } from '../child.js';
import { createWorkspace, type Workspace } from '../workspace.js';

/**
 * The evidence side: verifying a long log, and blame over a long history. The entries are
 * cloned from one real guarded run on the demo database, the incident's size.
 */
const HOUR = 3_600_000;

/** One real guarded cleanup (touched-scope backup) whose three entries every synthetic run copies. */
export async function recordTemplate(demoUrl: string): Promise<RunTemplate> {
  const ws = await createWorkspace('template');
  try {
    const config = await ws.config(demoUrl);
    const result = await withTarget(config.databaseUrl, (target) =>
      runGuarded(
        config,
        { scriptName: 'cleanup-invalid-sessions', args: [], dryRun: false, reason: 'bench template run', backupScope: 'touched' },
        target,
        silentLogger,
      ),
    );
    if (result.status !== 'committed')
      throw new Error(`template run ended ${result.status}: ${JSON.stringify(result.error ?? result.violations)}`);
    return await readRunTemplate(ws.evidenceDir);
  } finally {
    await ws.remove();
  }
}

export interface VerifyMeasurement {
  readonly entries: number;
  readonly bytes: number;
  readonly verifyMs: number;
  readonly entriesPerS: number;
  readonly appendEntriesPerS: number;
  readonly apiEntries: number;
  readonly cli: CliRun;
}

/** ~100,000 entries: the bulk signed in batches, the last 1,002 through the append API. */
export async function measureVerify(
  template: RunTemplate,
  entries: number,
  rounds: number,
  demoUrl: string,
): Promise<{ ws: Workspace; result: VerifyMeasurement }> {
  const ws = await createWorkspace('verify');
  const apiRuns = 334;
  const bulkRuns = Math.max(0, Math.ceil(entries / 3) - apiRuns);
  const history = new SyntheticHistory(template, Date.now() - (bulkRuns + apiRuns + 24) * HOUR, Math.floor(bulkRuns * 0.7));
  progress(`  writing ${((bulkRuns + apiRuns) * 3).toLocaleString('en')} signed entries`);
  await writeSignedBulk(ws.evidenceDir, ws.signingKey, bulkRuns, () => history.next());
  const appendEntriesPerS = await appendThroughApi(ws.evidenceDir, ws.signingKey, apiRuns, () => history.next());

  const samples: number[] = [];
  const results: VerifyResult[] = [];
  for (let r = 0; r < rounds; r++) {
    samples.push(
      await timeMs(async () => {
        results.push(await verifyLog({ evidenceDir: ws.evidenceDir }));
      }),
    );
    progress(`  verifyLog: round ${r + 1}/${rounds}: ${samples.at(-1)!.toFixed(0)} ms for ${results.at(-1)!.entries} entries`);
  }
  const last = results.at(-1)!;
  if (!last.ok) throw new Error(`the generated log does not verify: ${JSON.stringify(last.firstBad)}`);
  const verifyMs = median(samples);
  const { statSync } = await import('node:fs');
  const bytes = statSync(`${ws.evidenceDir}/audit.jsonl`).size;
  await ws.config(demoUrl);
  const cli = await runCli(['verify', '--json', '--config', ws.configFile], ws.env(demoUrl), ws.dir);
  if (cli.exitCode !== 0) progress(`  ${describeFailure('safe-run verify', cli)}`);
  return {
    ws,
    result: {
      entries: last.entries,
      bytes,
      verifyMs,
      entriesPerS: last.entries / (verifyMs / 1000),
      appendEntriesPerS,
      apiEntries: apiRuns * 3,
      cli,
    },
  };
}

export interface BlameMeasurement {
  readonly runs: number;
  readonly entries: number;
  readonly bytes: number;
  readonly samples: readonly CliRun[];
  readonly medianMs: number;
  readonly changes: number | null;
  /** `safe-run --version`: node start-up and module loading, which every CLI figure includes. */
  readonly cliStartupMs: number;
}

/** 10,000 runs (30,000 entries), then `safe-run blame users --json` as a child process. */
export async function measureBlame(template: RunTemplate, runs: number, rounds: number, demoUrl: string): Promise<BlameMeasurement> {
  const ws = await createWorkspace('blame');
  try {
    const history = new SyntheticHistory(template, Date.now() - (runs + 24) * HOUR, Math.floor(runs * 0.7));
    progress(`  writing ${runs.toLocaleString('en')} runs (${(runs * 3).toLocaleString('en')} entries)`);
    const entries = await writeSignedBulk(ws.evidenceDir, ws.signingKey, runs, () => history.next());
    const bytes = statSync(`${ws.evidenceDir}/audit.jsonl`).size;
    await ws.config(demoUrl);
    const samples: CliRun[] = [];
    for (let r = 0; r < rounds; r++) {
      const run = await runCli(['blame', 'users', '--json', '--config', ws.configFile], ws.env(demoUrl), ws.dir);
      if (run.exitCode !== 0) throw new Error(describeFailure('safe-run blame users', run));
      samples.push(run);
      progress(`  blame users: round ${r + 1}/${rounds}: ${run.wallMs.toFixed(0)} ms`);
    }
    const startup: number[] = [];
    for (let r = 0; r < 3; r++) startup.push((await runCli(['--version'], ws.env(demoUrl), ws.dir)).wallMs);
    let changes: number | null = null;
    try {
      changes = (JSON.parse(samples.at(-1)!.stdout) as { changes?: unknown[] }).changes?.length ?? null;
    } catch {
      changes = null;
    }
    return { runs, entries, bytes, samples, medianMs: median(samples.map((s) => s.wallMs)), changes, cliStartupMs: median(startup) };
  } finally {
    await ws.remove();
  }
}
