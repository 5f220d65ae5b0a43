import { configureWitnesses } from '../audit/witness.js';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/config.js';
import type { TargetHandle } from '../db/target.js';
import { ExitCode, ExitWith } from '../errors.js';
import { createLogger, type Logger } from '../logger.js';
import { startedFrom } from '../startup.js';

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
  log.debug('config', { file: config.file ?? '(none found: defaults)', evidenceDir: config.evidenceDir, startedFrom: startedFrom() });
  configureWitnesses(config.evidenceDir, config.witness);
  await useEvidenceStore(config);
  return { config, log, json: argv.json === true };
}

/** Config `evidence.store`: a shared store's modules load only when one is configured (start-up). */
export async function useEvidenceStore(config: Config): Promise<void> {
  if (config.evidenceStore === 'file') return;
  (await import('../audit/store-config.js')).useEvidenceStore(config);
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
