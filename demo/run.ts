import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { createDb, type Db } from '../src/db/connection.js';
import { withDatabase } from '../src/db/url.js';
import { startThrowawayPostgres } from '../support/throwaway/postgres.js';
import { migrateToLatest } from './migrate.js';
import { seedDemo } from './seed.js';
import { errorMessage } from '../src/errors.js';

/**
 * `npm run demo`: the incident, replayed with safe-run in front of it. A throwaway cluster
 * (or DATABASE_URL), the demo schema and seed, a guarded cleanup, then the users deleted out
 * of band, and what check, blame, report and verify make of it. Everything it creates is
 * removed at the end.
 */
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
/** The `safe-run` command as npm links it: bin/safe-run starts the built CLI (dist/src/cli.js). */
const safeRun = path.join(root, 'bin', 'safe-run');

interface Step {
  readonly args: string[];
  readonly expectExit: number;
  readonly why: string;
}

async function main(): Promise<number> {
  const work = mkdtempSync(path.join(os.tmpdir(), 'safe-run-demo-'));
  const server = await startThrowawayPostgres({ existingUrl: process.env.DATABASE_URL });
  let db: Db | null = null;
  try {
    const url = server.owned ? await createDemoDatabase(server.url) : server.url;
    db = createDb(url);
    say(`Demo database: ${server.owned ? 'a throwaway PostgreSQL started for this demo' : 'DATABASE_URL'}`);
    await migrateToLatest(db);
    await seedDemo(db);
    await printCounts(db, 'Seeded');
    // Only in a cluster the demo owns: roles are cluster-wide, and DATABASE_URL is someone else's.
    const scriptRole = server.owned ? await createScriptRole(db) : null;

    const { env, config } = demoEnvironment(work, url, scriptRole);
    const runSteps = (steps: readonly Step[]): Promise<boolean> => runCliSteps(env, config, steps);
    let ok = await runSteps([
      { args: ['keygen'], expectExit: 0, why: 'A signing key for the audit log (a temp one, for the demo)' },
      { args: ['list'], expectExit: 0, why: 'The scripts and what they may touch' },
      {
        args: ['cleanup-invalid-sessions', '--reason', 'demo: nightly session cleanup'],
        expectExit: 0,
        why: "The incident's cleanup, guarded",
      },
    ]);

    say('Now the users disappear OUTSIDE safe-run, as an `npm run db:reset` with a failed seed would do:\n  DELETE FROM users;');
    await sql`delete from users`.execute(db);
    await db.destroy();
    db = null;

    ok =
      (await runSteps([
        { args: ['check'], expectExit: 10, why: 'Drift since the last signed observation (exit 10 = drift found)' },
        { args: ['blame', 'users'], expectExit: 0, why: 'Who changed users, and when' },
        { args: ['report', 'users', '-o', path.join(work, 'report.md')], expectExit: 0, why: 'The post-mortem document' },
      ])) && ok;
    printVerdict(path.join(work, 'report.md'));
    ok = (await runSteps([{ args: ['verify'], expectExit: 0, why: 'Every signature and the hash chain' }])) && ok;
    say(ok ? 'Demo finished: every step behaved as expected.' : 'Demo finished with unexpected results (see above).');
    return ok ? 0 : 1;
  } finally {
    await db?.destroy();
    await server.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

async function createDemoDatabase(serverUrl: string): Promise<string> {
  const admin = createDb(serverUrl, { maxConnections: 1 });
  try {
    await sql`create database safe_run_demo`.execute(admin);
  } finally {
    await admin.destroy();
  }
  return withDatabase(serverUrl, 'safe_run_demo');
}

/**
 * What an operator should set up: scripts log in as a non-superuser role with only the
 * rights the scripts need, so a script cannot switch the guard's counting off (trust: role).
 */
async function createScriptRole(db: Db): Promise<string> {
  const role = 'safe_run_demo_maintenance';
  await sql`create role ${sql.id(role)} login`.execute(db);
  await sql`grant usage on schema public to ${sql.id(role)}`.execute(db);
  await sql`grant select, delete on oidc_models to ${sql.id(role)}`.execute(db);
  await sql`grant select on users to ${sql.id(role)}`.execute(db);
  say(`A script role: ${role} (no superuser; SELECT, DELETE on oidc_models, SELECT on users)`);
  return role;
}

/** The demo's own config, evidence dir and key, so it never touches the user's. */
function demoEnvironment(work: string, url: string, scriptRole: string | null): { env: Record<string, string>; config: string } {
  const config = path.join(work, 'safe-run.config.json');
  writeFileSync(
    config,
    JSON.stringify(
      {
        scriptsDir: path.join(root, 'scripts'),
        evidenceDir: path.join(work, 'evidence'),
        criticalTables: { users: { maxDropPercent: 10 } },
        ...(scriptRole ? { scriptRole } : {}),
      },
      null,
      2,
    ),
  );
  // Always a temp key: the demo's evidence is thrown away, and a real key must never sign demo entries.
  const env = { DATABASE_URL: url, SAFE_RUN_SIGNING_KEY: path.join(work, 'signing.key') };
  return { env, config };
}

async function runCliSteps(env: Record<string, string>, config: string, steps: readonly Step[]): Promise<boolean> {
  let ok = true;
  for (const step of steps) {
    say(`${step.why}\n$ safe-run ${step.args.map((a) => (a.includes(' ') ? `"${a}"` : a)).join(' ')}`);
    const result = await execa(safeRun, [...step.args, '--config', config], {
      env,
      reject: false,
      stdout: 'inherit',
      stderr: 'inherit',
    });
    if (result.exitCode !== step.expectExit) {
      process.stdout.write(`!! expected exit ${step.expectExit}, got ${result.exitCode}\n`);
      ok = false;
    } else process.stdout.write(`(exit ${result.exitCode})\n`);
  }
  return ok;
}

async function printCounts(db: Db, label: string): Promise<void> {
  const tables = ['users', 'oidc_models', 'oauth_clients', 'models', 'credit_allocation', 'subscriptions', 'usage_events'];
  const counts = [];
  for (const t of tables) {
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from ${sql.table(t)}`.execute(db);
    counts.push(`${t}: ${rows[0]!.n}`);
  }
  say(`${label}: ${counts.join(', ')}`);
}

function printVerdict(reportFile: string): void {
  try {
    const text = readFileSync(reportFile, 'utf8');
    const verdict = /## Verdict\n+([\s\S]*?)(\n## |$)/.exec(text)?.[1]?.trim();
    if (verdict) say(`The report's verdict:\n${verdict}`);
  } catch {
    // The report step already said what went wrong.
  }
}

function say(text: string): void {
  process.stdout.write(`\n== ${text}\n`);
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`demo failed: ${errorMessage(error)}\n`);
    process.exitCode = 1;
  },
);
