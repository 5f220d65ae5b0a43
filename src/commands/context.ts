import { configureWitnesses } from '../audit/witness.js';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/config.js';
import type { TargetHandle } from '../db/target.js';
import { ExitCode, ExitWith } from '../errors.js';
import { createLogger, type Logger } from '../logger.js';

import type { GlobalArgs } from './global-args.js';

export { globalOptions, type GlobalArgs } from './global-args.js';

export interface CommandContext {
  readonly config: Config;
  readonly log: Logger;
  readonly json: boolean;
}

/** What a yargs handler does first: the checked config and a logger, nothing else. */
export async function loadContext(argv: GlobalArgs): Promise<CommandContext> {
  const log = createLogger({ verbose: argv.verbose, format: argv['log-format'] });
  const config = await loadConfig({ configPath: argv.config, db: argv.db });
  log.debug('config', { file: config.file ?? '(none found: defaults)', evidenceDir: config.evidenceDir });
  configureWitnesses(config.evidenceDir, config.witness);
  await useEvidenceStore(config);
  return { config, log, json: argv.json === true };
}

/**
 * Config `evidence.store` is a URL: every reader and writer of this evidence directory uses
 * the target's chain in that evidence database. Nothing connects until evidence is touched;
 * the pool lets the process exit when idle, since no command owns its closing.
 */
export async function useEvidenceStore(config: Config): Promise<void> {
  if (config.evidenceStore === 'file') return;
  const [{ createDb }, { parseDatabaseUrl, redactUrl }, { withDatabaseAt }, { databaseStore, readChainTarget }, { configureEvidenceStore }] =
    await Promise.all([
      import('../db/connection.js'),
      import('../db/url.js'),
      import('../db/target.js'),
      import('../audit/store-pg.js'),
      import('../audit/store.js'),
    ]);
  const url = parseDatabaseUrl(config.evidenceStore);
  const where = `evidence database ${redactUrl(url)}`;
  const target = async () => {
    const targetUrl = parseDatabaseUrl(config.databaseUrl);
    const chain = await withDatabaseAt(targetUrl, { applicationName: 'safe-run', maxConnections: 1 }, (db) => readChainTarget(db));
    if (!chain) throw new Error('pg_control_system() returned no row');
    return chain;
  };
  const db = createDb<Record<string, never>>(url, { applicationName: 'safe-run evidence', maxConnections: 4, allowExitOnIdle: true });
  configureEvidenceStore(config.evidenceDir, databaseStore({ db, where, target }));
}

/**
 * loadContext for the commands that read evidence (check, log, blame, show, report): a log
 * behind its database anchor (emptied, removed, cut) is refused before anything reads it.
 * `fn` gets the command's one handle on its target database, the one the anchor was read
 * through; it is closed when `fn` ends.
 */
export async function withEvidenceContext(
  argv: GlobalArgs,
  fn: (ctx: CommandContext, target: TargetHandle) => Promise<void>,
): Promise<void> {
  const ctx = await loadContext(argv);
  // Imported here, not at the top: the database driver and the query builder are most of a
  // command's start-up, and list, keygen or --help never open a database.
  const [{ withTarget }, { assertLogReachesAnchor }] = await Promise.all([import('../db/target.js'), import('../audit/anchor-check.js')]);
  await withTarget(ctx.config.databaseUrl, async (target) => {
    await assertLogReachesAnchor(ctx.config, target, ctx.log);
    await fn(ctx, target);
  });
}

/**
 * The only place command results reach stdout: one JSON document with --json, the
 * human rendering otherwise. A non-zero code ends the process after the output.
 */
export function emit<T>(
  ctx: { readonly json: boolean },
  result: T,
  renderText: (result: T) => string,
  exitCode: number = ExitCode.ok,
): void {
  const text = ctx.json ? `${JSON.stringify(result, null, 2)}\n` : renderText(result);
  if (text) process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  if (exitCode !== 0) throw new ExitWith(exitCode);
}
