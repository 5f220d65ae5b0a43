import type { CommandBody } from './registry.js';
import type { Argv } from 'yargs';
import { standAgainstAnchor, whereConfigWasSought, withConfigAnchor } from '../audit/anchor-check.js';
import { warnSkipped } from '../audit/read.js';
import { evidenceStore } from '../audit/store.js';
import type { ChainHead, VerifyProblem, VerifyResult } from '../audit/types.js';
import { readIdentity } from '../db/identity.js';
import { findLedgerTampering, readSeals } from '../ledger/findings.js';
import { verifyLog } from '../audit/verify.js';
import { checkWitnessFile } from '../audit/witness-file.js';
import type { Config } from '../config/config.js';
import { withTarget, type TargetHandle } from '../db/target.js';
import { ExitCode, usageError } from '../errors.js';
import type { Logger } from '../logger.js';
import { emit, loadContext, type GlobalArgs } from './context.js';

export interface VerifyCommandOptions {
  /** `SEQ:HASH`, e.g. from an earlier `safe-run verify` kept somewhere safe. */
  readonly expectHead?: string;
  /** A file of witnessed heads (config `witness`), checked against the log. */
  readonly witness?: string;
}

/**
 * `safe-run verify`. With a database, its anchored chain heads catch a cut-off tail and an
 * emptied, removed or replaced log, and its recorded keys pin the signers; an unreachable
 * database is a warning, because the file itself can still be checked.
 */
export async function verifyAudit(
  config: Config,
  options: VerifyCommandOptions,
  target: TargetHandle,
  log: Logger,
): Promise<VerifyResult & { readonly path: string }> {
  const expectHead = options.expectHead === undefined ? undefined : parseExpectHead(options.expectHead);
  return withConfigAnchor(config, target, async (anchor, where) => {
    const result = await verifyLog({ evidenceDir: config.evidenceDir, anchor, expectHead, trustedKeys: config.trustedKeys });
    const standing = await standAgainstAnchor(config.evidenceDir, anchor, where, log, whereConfigWasSought(config));
    if (standing.status === 'nothing' && !options.witness) throw standing.error;
    for (const warning of result.warnings) log.warn(warning);
    // A cut log is a valid shorter chain; how far the anchor says it went is the more telling reason.
    const behind = standing.status === 'behind' && (result.ok || result.firstBad?.reason === 'truncated') ? standing.problem : undefined;
    const witnessed =
      result.ok && !behind && options.witness
        ? await checkWitnessFile(options.witness, config.evidenceDir, result.logId, result.head)
        : null;
    const firstBad = behind ?? witnessed ?? result.firstBad ?? (result.ok ? await ledgerProblem(config, target, log) : undefined);
    return { ...result, ok: !firstBad, ...(firstBad ? { firstBad } : {}), path: evidenceStore(config.evidenceDir).where };
  });
}

/** With a database: the sealed change-ledger rows must still be there, unchanged. */
async function ledgerProblem(config: Config, target: TargetHandle, log: Logger): Promise<VerifyProblem | undefined> {
  const live = await target.openIfPossible(log);
  if (!live) return undefined;
  const identity = await readIdentity(live.db, live.url);
  const seals = await readSeals(config.evidenceDir, warnSkipped(log));
  const first = (await findLedgerTampering(live.db, config.evidenceDir, identity, seals))[0];
  return first ? { seq: first.seq, line: first.seq, reason: 'ledger-tampered', detail: first.detail } : undefined;
}

export function parseExpectHead(text: string): ChainHead {
  const match = /^(\d+):([0-9a-f]{64})$/.exec(text.trim());
  if (!match || Number(match[1]) < 1) {
    throw usageError(
      `--expect-head must be SEQ:HASH (a positive seq and a 64-hex-digit sha256), not "${text}".`,
      'Copy the head from the output of an earlier `safe-run verify`.',
    );
  }
  return { seq: Number(match[1]), hash: match[2]! };
}

function renderVerify(r: VerifyResult & { readonly path: string }): string {
  if (r.firstBad) {
    const { seq, line, reason, detail } = r.firstBad;
    return [`TAMPERED: entry ${seq} (line ${line}): ${reason} — ${detail}`, `  log: ${r.path}`, `  next: ${nextStep(r)}`].join('\n');
  }
  if (!r.head) return `OK: 0 entries (no audit log yet at ${r.path})`;
  const trust =
    r.trust.mode === 'first-use'
      ? `trust: first use of entry 1's key ${r.keys[0]} (no trustedKeys and no database anchor pins a key; pin it in "trustedKeys")`
      : `trust: pinned keys ${r.trust.pinned.join(', ')}`;
  return `OK: ${r.entries} entries, head ${r.head.seq}:${r.head.hash}, signed by keys ${r.keys.join(', ')}\n  ${trust}`;
}

function nextStep(r: VerifyResult): string {
  const keep = 'Keep a copy of audit.jsonl as it is now and do not append to it';
  switch (r.firstBad?.reason) {
    case 'truncated':
      return `${keep}; restore the missing entries from a backup of the evidence directory and find out who cut the log (entries up to ${r.head?.seq ?? 0} are intact).`;
    case 'log-behind-anchor':
      return `${keep}; restore audit.jsonl from a backup of the evidence directory and find out who cut, emptied or replaced it.`;
    case 'witness-mismatch':
      return `${keep}; the witness holds heads this log no longer has: restore the log from a backup and find out who rewrote it.`;
    case 'untrusted-key':
      return `${keep}; if that key is yours, pin it in "trustedKeys" or introduce it with \`safe-run keygen --rotate\` or \`--add\`; otherwise the log was re-signed.`;
    case 'ledger-tampered':
      return `the signed log is intact, but safe_run.ledger lost or changed rows it had sealed: the copies in the evidence directory's ledger/ hold the originals (\`safe-run blame <table>\` reads them); find out who wrote to safe_run.`;
    case 'bad-body':
      return `entry ${r.firstBad.seq} is signed by a trusted key, but its body is not what safe-run writes for its kind (a safe-run bug, or a writer holding the key); \`log\`, \`show\` and \`blame\` skip it. ${keep}, and report it.`;
    case 'unknown-key':
      return `${keep}; if that key is yours it must be introduced with \`safe-run keygen --rotate\`, otherwise entry ${r.firstBad.seq} was forged.`;
    default:
      return `${keep}; compare it with a backup of the evidence directory to see what changed at entry ${r.firstBad?.seq}. Entries before it verified.`;
  }
}

interface VerifyArgs extends GlobalArgs {
  readonly 'expect-head'?: string;
  readonly witness?: string;
}

export const verifyCommand: CommandBody<VerifyArgs> = {
  builder: (yargs: Argv<GlobalArgs>) =>
    yargs
      .option('expect-head', { type: 'string', describe: 'Fail unless the log reaches this head (SEQ:HASH from an earlier verify)' })
      .option('witness', {
        type: 'string',
        describe: 'A file of heads a witness kept: each must match the log, and the log must reach the highest',
      }),
  handler: async (argv) => {
    const ctx = await loadContext(argv);
    const options = { expectHead: argv['expect-head'], witness: argv.witness };
    const result = await withTarget(ctx.config.databaseUrl, (target) => verifyAudit(ctx.config, options, target, ctx.log));
    emit(ctx, result, renderVerify, result.ok ? ExitCode.ok : ExitCode.auditFailed);
  },
};
