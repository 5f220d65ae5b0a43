import { createInterface } from 'node:readline/promises';
import type { Config } from '../config/config.js';
import { databaseName } from '../db/url.js';
import { usageError } from '../errors.js';

/**
 * Per-environment rules ("environments" in the config): a host that matches `hostPattern`
 * may require a --reason and an explicit confirmation. Production mistakes are made at 3 a.m.
 * against the wrong URL; this is where that gets caught.
 */
export async function checkEnvironment(
  config: Config,
  url: URL,
  options: { reason: string | null; yes?: boolean; dryRun: boolean },
  /** Settled before anyone is asked to confirm (the script's load, which may still fail); called only to prompt. */
  beforePrompt?: () => Promise<unknown>,
): Promise<void> {
  for (const [name, env] of Object.entries(config.environments)) {
    if (!new RegExp(env.hostPattern).test(url.hostname)) continue;
    if (env.requireReason && !options.reason) {
      throw usageError(`The ${name} environment requires a reason.`, 'Add --reason "ticket or why" to the command.');
    }
    if (env.confirm && !options.yes && !options.dryRun) {
      await beforePrompt?.();
      await confirm(name, databaseName(url));
    }
  }
}

async function confirm(environment: string, dbname: string): Promise<void> {
  if (!process.stdin.isTTY) {
    throw usageError(`The ${environment} environment requires confirmation.`, 'Pass --yes to confirm non-interactively.');
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`This is ${environment}. Type the database name (${dbname}) to go on: `);
    if (answer.trim() !== dbname) throw usageError('Not confirmed; nothing was run.');
  } finally {
    rl.close();
  }
}
