import os from 'node:os';
import { startThrowawayPostgres } from '../support/throwaway/postgres.js';
import { parseBenchArgs, wants } from './args.js';
import { buildBenchDatabase, buildDemoDatabase, dropBenchDatabase, type BenchDatabase } from './data.js';
import { describeMachine } from './machine.js';
import { progress } from './measure.js';
import { Figures, renderText, type ComparisonRow } from './report.js';
import { runSuite } from './suite.js';
import { createWorkspace } from './workspace.js';

/**
 * `npm run bench`: what safe-run costs beyond the backup, measured side by side on data it
 * builds itself in a throwaway PostgreSQL (or on the server of DATABASE_URL, in databases
 * of its own). Progress goes to stderr; stdout gets the table, or with --json one document.
 */
const NAMES = { full: 'safe_run_bench', tenth: 'safe_run_bench_tenth', demo: 'safe_run_bench_demo' };

async function main(): Promise<number> {
  const args = parseBenchArgs(process.argv.slice(2));
  const started = Date.now();
  const server = await startThrowawayPostgres({ existingUrl: process.env.DATABASE_URL });
  const ws = await createWorkspace('run');
  const figures = new Figures();
  const rows: ComparisonRow[] = [];
  const details: Record<string, unknown> = {};
  const notes: string[] = [];
  let full: BenchDatabase | null = null;
  try {
    const machine = await describeMachine(server.url);
    progress(
      `bench on ${server.owned ? 'a throwaway PostgreSQL' : 'the server of DATABASE_URL'}: ${args.tables} tables, ${args.rows.toLocaleString('en')} rows, ${args.rounds} rounds (${args.backupRounds} for full backups)`,
    );
    const generating = Date.now();
    full = await buildBenchDatabase(server.url, NAMES.full, args.tables, args.rows, args.rowBytes, args.reuse);
    const tenth = wants(args, 'growth')
      ? await buildBenchDatabase(server.url, NAMES.tenth, args.tables, Math.round(args.rows / 10), args.rowBytes, args.reuse)
      : null;
    const demoUrl = await buildDemoDatabase(server.url, NAMES.demo);
    const generationS = (Date.now() - generating) / 1000;

    await runSuite({ args, full, tenth, demoUrl, ws, figures, rows, details, notes });
    const load = Math.max(machine.loadAverageAtStart[0] ?? 0, os.loadavg()[0] ?? 0);
    if (load > machine.nproc / 2) {
      notes.push(
        `the machine was busy (load average up to ${load.toFixed(1)} on ${machine.nproc} CPUs): other processes competed with both sides, so expect run-to-run spread`,
      );
    }

    const meta = {
      command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
      params: {
        tables: args.tables,
        rows: args.rows,
        rowBytes: args.rowBytes,
        rounds: args.rounds,
        backupRounds: args.backupRounds,
        sessions: full.sessions,
        largeTables: full.tables.filter((t) => t.large).map((t) => t.rows),
      },
      machine: { ...machine, loadAverageAtEnd: os.loadavg().map((l) => Math.round(l * 100) / 100) },
      seconds: { generation: Math.round(generationS), total: Math.round((Date.now() - started) / 1000) },
    };
    if (args.json) {
      process.stdout.write(
        `${JSON.stringify({ ...figures.toJson(), pass: figures.verdicts(), missing: Object.fromEntries(figures.missing), notes, ...meta, details }, null, 2)}\n`,
      );
    } else {
      process.stdout.write(renderText(rows, figures, notes));
      process.stdout.write(
        `\n${meta.params.tables} tables, ${meta.params.rows.toLocaleString('en')} rows; ${machine.nproc} CPUs (${machine.cpuModel}), ${machine.memoryGb} GB; ${machine.postgres.split(' on ')[0]}; data ${meta.seconds.generation} s, total ${meta.seconds.total} s\n`,
      );
    }
    // Figures left out with --only are not failures; figures that could not be measured are.
    return figures.missing.size > 0 ? 1 : 0;
  } finally {
    await ws.remove();
    if (!args.reuse) {
      for (const name of Object.values(NAMES)) await dropBenchDatabase(server.url, name).catch(() => {});
    }
    await server.stop();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = 1;
  },
);
