import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Argv } from 'yargs';
import type { CommandBody } from './registry.js';
import { generateSigningKey } from '../audit/keys.js';
import { EVIDENCE_DIR_MODE } from '../audit/modes.js';
import { CONFIG_FILE_NAMES, loadConfig } from '../config/load.js';
import type { RawConfig } from '../config/schema.js';
import { withTarget } from '../db/target.js';
import { tableKey } from '../db/names.js';
import { usageError } from '../errors.js';
import { createLogger, type Logger } from '../logger.js';
import { suggest } from '../shell-quote.js';
import { doctor, renderDoctor, type DoctorReport } from './doctor.js';
import { emit, type GlobalArgs } from './context.js';

export interface InitOptions {
  /** The directory the config goes in (the project root). */
  readonly dir: string;
  readonly databaseEnv: string;
  readonly scriptsDir: string;
  readonly evidenceDir: string;
  /** Default: the per-user key (~/.config/safe-run/signing.key), kept out of the project. */
  readonly signingKey?: string;
  readonly critical: readonly string[];
  /** --db, for doctor only: a URL is never written into the config (it may hold a password). */
  readonly db?: string;
}

export interface InitResult {
  readonly config: string;
  readonly evidenceDir: string;
  readonly signingKey: string;
  /** False when a key was already there (it is used, never replaced). */
  readonly keyCreated: boolean;
  readonly keyId: string | null;
  readonly doctor: DoctorReport;
}

/**
 * `safe-run init`: the config, the evidence directory and the signing key, then `doctor`, so
 * a new project is one command away from its first guarded run. It asks nothing (it must
 * work in a provisioning script) and never overwrites a config.
 */
export async function initProject(options: InitOptions, log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<InitResult> {
  const dir = path.resolve(options.dir);
  const existing = CONFIG_FILE_NAMES.map((name) => path.join(dir, name)).find((file) => existsSync(file));
  if (existing) {
    throw usageError(`${existing} already exists; init does not overwrite a config.`, `Edit it, or check it with ${suggest('doctor')}.`);
  }
  const file = path.join(dir, 'safe-run.config.json');
  const raw: RawConfig = {
    ...(options.databaseEnv !== 'DATABASE_URL' ? { databaseEnv: options.databaseEnv } : {}),
    scriptsDir: options.scriptsDir,
    evidenceDir: options.evidenceDir,
    ...(options.signingKey ? { signingKey: options.signingKey } : {}),
    ...(options.critical.length ? { criticalTables: Object.fromEntries(options.critical.map((t) => [t, { maxDropPercent: 10 }])) } : {}),
  };
  for (const t of options.critical) assertTableName(t); // before anything is written
  await mkdir(dir, { recursive: true });
  await writeFile(file, `${JSON.stringify(raw, null, 2)}\n`, { flag: 'wx' });
  const config = await loadConfig({ configPath: file, cwd: dir, env, db: options.db });
  await mkdir(config.evidenceDir, { recursive: true, mode: EVIDENCE_DIR_MODE });
  await mkdir(config.scriptsDirs[0]!, { recursive: true });
  const keyCreated = !existsSync(config.signingKey);
  const key = keyCreated ? await generateSigningKey({ signingKeyPath: config.signingKey, evidenceDir: config.evidenceDir }) : null;
  const report = await withTarget(config.databaseUrl, (target) => doctor(config, target, log));
  return {
    config: file,
    evidenceDir: config.evidenceDir,
    signingKey: config.signingKey,
    keyCreated,
    keyId: key?.keyId ?? null,
    doctor: report,
  };
}

function assertTableName(name: string): void {
  try {
    tableKey(name);
  } catch {
    throw usageError(`--critical ${name}: not a table name.`, 'Write it as `users` or `schema.table`.');
  }
}

function renderInit(r: InitResult): string {
  return [
    `Wrote ${r.config}`,
    `  evidence directory ${r.evidenceDir} (mode 0700)`,
    r.keyCreated
      ? `  signing key ${r.signingKey} created (key ${r.keyId}; mode 0600, back it up)`
      : `  signing key ${r.signingKey} already existed: using it`,
    '',
    'doctor:',
    renderDoctor(r.doctor),
    '',
    r.doctor.ok
      ? `next: ${suggest('snapshot', '--label', 'first')}, then ${suggest('list')}`
      : 'next: fix the failed checks above, then run `safe-run doctor` again.',
  ].join('\n');
}

interface InitArgs extends GlobalArgs {
  readonly dir?: string;
  readonly 'database-env'?: string;
  readonly 'scripts-dir'?: string;
  readonly 'evidence-dir'?: string;
  readonly 'signing-key'?: string;
  readonly critical?: string[];
}

export const initCommand: CommandBody<InitArgs> = {
  builder: (yargs: Argv<GlobalArgs>) =>
    yargs
      .option('dir', { type: 'string', describe: 'Project directory for the config (default: the current directory)' })
      .option('database-env', { type: 'string', default: 'DATABASE_URL', describe: 'Environment variable that holds the database URL' })
      .option('scripts-dir', { type: 'string', default: 'scripts', describe: 'Where the maintenance scripts live' })
      .option('evidence-dir', { type: 'string', default: 'snapshots', describe: 'Audit log, backups and public keys' })
      .option('signing-key', { type: 'string', describe: 'Private key path (default: ~/.config/safe-run/signing.key)' })
      .option('critical', { type: 'string', array: true, default: [], describe: 'Tables that must never go empty (e.g. users)' })
      .example('$0 init --critical users --database-env APP_DATABASE_URL', 'A project whose URL is in APP_DATABASE_URL')
      .epilog(
        'Exit codes: 0 written and doctor passed, 2 a config already exists (or a doctor check failed), 4/5 as doctor.',
      ) as Argv<InitArgs>,
  handler: async (argv) => {
    const log = createLogger({ verbose: argv.verbose });
    log.debug('init', { dir: argv.dir ?? process.cwd() });
    const result = await initProject(
      {
        dir: argv.dir ?? process.cwd(),
        databaseEnv: argv['database-env'] ?? 'DATABASE_URL',
        scriptsDir: argv['scripts-dir'] ?? 'scripts',
        evidenceDir: argv['evidence-dir'] ?? 'snapshots',
        signingKey: argv['signing-key'],
        critical: argv.critical ?? [],
        db: argv.db,
      },
      log,
    );
    emit({ json: argv.json === true }, result, renderInit, result.doctor.exitCode);
  },
};
