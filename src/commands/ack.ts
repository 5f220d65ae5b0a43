import os from 'node:os';
import type { Argv } from 'yargs';
import type { CommandBody } from './registry.js';
import { databaseAnchor, openAuditLog } from '../audit/log.js';
import type { Config } from '../config/config.js';
import type { TargetHandle } from '../db/target.js';
import { usageError } from '../errors.js';
import { readFindings } from '../history/check.js';
import type { OpenFinding } from '../history/open-findings.js';
import type { Logger } from '../logger.js';
import type { AckBody } from '../records/index.js';
import { readOperator } from '../run/operator.js';
import { suggest } from '../shell-quote.js';
import { emit, withEvidenceContext, type GlobalArgs } from './context.js';

export interface AckResult {
  readonly acknowledged: readonly { readonly finding: string; readonly kind: string; readonly seq: number; readonly hash: string }[];
  /** Findings still open after these acks. */
  readonly open: readonly string[];
}

/**
 * `safe-run ack <finding> --reason R`: a signed answer to one open `check` finding. Only an
 * ack closes a finding; the reason is what the next reader of the log is told.
 */
export async function ackFindings(
  config: Config,
  options: { readonly findings: readonly string[]; readonly reason: string },
  target: TargetHandle,
  log: Logger,
): Promise<AckResult> {
  const reason = options.reason.trim();
  if (!reason) throw usageError('--reason must say what happened and what was done.', suggestAck('<finding>'));
  const { now, scan } = await readFindings(config, target, log);
  const chosen = options.findings.map((id) => pick(id, scan.open, scan.acked));
  const audit = await openAuditLog({
    evidenceDir: config.evidenceDir,
    signingKeyPath: config.signingKey,
    anchor: databaseAnchor((await target.open()).db),
    log,
  });
  const operator = await readOperator();
  const acknowledged = [];
  for (const f of chosen) {
    const body: AckBody = {
      v: 1,
      finding: f.id,
      kind: f.kind,
      ...(f.table ? { table: f.table } : {}),
      database: now.database.key,
      detail: f.detail,
      firstSeen: f.firstSeen.ts,
      reason,
      operator,
      host: os.hostname(),
    };
    const entry = await audit.append('ack', body);
    acknowledged.push({ finding: f.id, kind: f.kind, seq: entry.seq, hash: entry.hash });
  }
  const done = new Set(chosen.map((f) => f.id));
  return { acknowledged, open: scan.open.filter((f) => !done.has(f.id)).map((f) => f.id) };
}

/** An exact id, or a prefix that names one open finding. */
function pick(id: string, open: readonly OpenFinding[], acked: ReadonlyMap<string, AckBody>): OpenFinding {
  const exact = open.find((f) => f.id === id);
  if (exact) return exact;
  const done = acked.get(id);
  if (done)
    throw usageError(
      `Finding ${id} was already acknowledged by ${done.operator.osUser}: ${done.reason}`,
      `${suggest('check')} lists the open ones.`,
    );
  const matches = open.filter((f) => f.id.startsWith(id));
  if (matches.length === 1) return matches[0]!;
  if (matches.length > 1) {
    throw usageError(`"${id}" matches ${matches.length} open findings: ${matches.map((f) => f.id).join(', ')}.`, 'Give more of the id.');
  }
  throw usageError(`No open finding "${id}".`, `${suggest('check')} lists the open findings with their ids.`);
}

const suggestAck = (id: string): string => `For example: ${suggest('ack', id, '--reason', 'restored users from run 01J…')}`;

function renderAck(r: AckResult): string {
  const lines = r.acknowledged.map((a) => `acknowledged ${a.finding} (${a.kind}): signed entry #${a.seq}`);
  lines.push(r.open.length ? `  still open: ${r.open.join(', ')}` : '  no finding is open: `safe-run check` exits 0 again.');
  return lines.join('\n');
}

interface AckArgs extends GlobalArgs {
  readonly finding: string[];
  readonly reason?: string;
}

export const ackCommand: CommandBody<AckArgs> = {
  builder: (yargs: Argv<GlobalArgs>) =>
    yargs
      .positional('finding', { type: 'string', array: true, demandOption: true, describe: 'Finding id(s) as `safe-run check` prints them' })
      .option('reason', { type: 'string', demandOption: true, describe: 'What happened and what was done (stored, signed)' })
      .example('$0 ack critical-empty-3f9a1c2e --reason "users restored from run 01J…"', 'Close one finding') as Argv<AckArgs>,
  handler: async (argv) => {
    await withEvidenceContext(argv, async (ctx, target) => {
      const options = { findings: argv.finding, reason: argv.reason ?? '' };
      emit(ctx, await ackFindings(ctx.config, options, target, ctx.log), renderAck);
    });
  },
};
