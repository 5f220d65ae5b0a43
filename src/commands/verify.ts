import type { Argv, CommandModule } from 'yargs';
import { databaseAnchor } from '../audit/anchor.js';
import { auditLogPath } from '../audit/read.js';
import type { ChainHead, VerifyResult } from '../audit/types.js';
import { verifyLog } from '../audit/verify.js';
import type { Config } from '../config/config.js';
import { createDb } from '../db/connection.js';
import { parseDatabaseUrl } from '../db/url.js';
import { ExitCode, usageError } from '../errors.js';
import type { Logger } from '../logger.js';
import { emit, loadContext, type GlobalArgs } from './context.js';

export interface VerifyCommandOptions {
  /** `SEQ:HASH`, e.g. from an earlier `safe-run verify` kept somewhere safe. */
  readonly expectHead?: string;
}

/**
 * `safe-run verify`. With a database, its anchored chain head catches a cut-off tail; an
 * unreachable database is a warning, because the file itself can still be checked.
 */
export async function verifyAudit(config: Config, options: VerifyCommandOptions, log: Logger): Promise<VerifyResult & { readonly path: string }> {
  const expectHead = options.expectHead === undefined ? undefined : parseExpectHead(options.expectHead);
  const db = config.databaseUrl ? createDb(parseDatabaseUrl(config.databaseUrl), { maxConnections: 1, applicationName: 'safe-run verify' }) : null;
  try {
    const result = await verifyLog({ evidenceDir: config.evidenceDir, anchor: db ? databaseAnchor(db) : null, expectHead });
    for (const warning of result.warnings) log.warn(warning);
    return { ...result, path: auditLogPath(config.evidenceDir) };
  } finally {
    await db?.destroy();
  }
}

export function parseExpectHead(text: string): ChainHead {
  const match = /^(\d+):([0-9a-f]{64})$/.exec(text.trim());
  if (!match || Number(match[1]) < 1) {
    throw usageError(`--expect-head must be SEQ:HASH (a positive seq and a 64-hex-digit sha256), not "${text}".`, 'Copy the head from the output of an earlier `safe-run verify`.');
  }
  return { seq: Number(match[1]), hash: match[2]! };
}

function renderVerify(r: VerifyResult & { readonly path: string }): string {
  if (r.firstBad) {
    const { seq, line, reason, detail } = r.firstBad;
    return [`TAMPERED: entry ${seq} (line ${line}): ${reason} — ${detail}`, `  log: ${r.path}`, `  next: ${nextStep(r)}`].join('\n');
  }
  if (!r.head) return `OK: 0 entries (no audit log yet at ${r.path})`;
  return `OK: ${r.entries} entries, head ${r.head.seq}:${r.head.hash}, signed by keys ${r.keys.join(', ')}`;
}

function nextStep(r: VerifyResult): string {
  const keep = 'Keep a copy of audit.jsonl as it is now and do not append to it';
  switch (r.firstBad?.reason) {
    case 'truncated':
      return `${keep}; restore the missing entries from a backup of the evidence directory and find out who cut the log (entries up to ${r.head?.seq ?? 0} are intact).`;
    case 'unknown-key':
      return `${keep}; if that key is yours it must be introduced with \`safe-run keygen --rotate\`, otherwise entry ${r.firstBad.seq} was forged.`;
    default:
      return `${keep}; compare it with a backup of the evidence directory to see what changed at entry ${r.firstBad?.seq}. Entries before it verified.`;
  }
}

interface VerifyArgs extends GlobalArgs {
  readonly 'expect-head'?: string;
}

export const verifyCommand: CommandModule<GlobalArgs, VerifyArgs> = {
  command: 'verify',
  describe: 'Check every signature and the hash chain; name the first bad entry and why',
  builder: (yargs: Argv<GlobalArgs>) =>
    yargs.option('expect-head', { type: 'string', describe: 'Fail unless the log reaches this head (SEQ:HASH from an earlier verify)' }),
  handler: async (argv) => {
    const ctx = await loadContext(argv);
    const result = await verifyAudit(ctx.config, { expectHead: argv['expect-head'] }, ctx.log);
    emit(ctx, result, renderVerify, result.ok ? ExitCode.ok : ExitCode.auditFailed);
  },
};
