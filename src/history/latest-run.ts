import { warnSkipped } from '../audit/read.js';
import type { Config } from '../config/config.js';
import { usageError } from '../errors.js';
import type { Logger } from '../logger.js';
import { isStarted, RunCollector, type StartedRun } from './runs.js';
import { scanLog } from './scan.js';

/** `last` and `latest`: the words an operator types right after a run. */
const LATEST = new Set(['last', 'latest']);

/**
 * Which run `last` means. `show` means whatever ran last (a dry run included); `restore` and
 * `undo` mean the newest run that committed with a verified backup, since a dry run has
 * neither anything to undo nor a backup to restore from.
 */
export type LatestKind = 'any' | 'committed';

export function isLatestRef(ref: string): boolean {
  return LATEST.has(ref.trim().toLowerCase());
}

/** The run id a ref names: `last`/`latest` resolved from the log, any other ref (an id or a prefix) as given. */
export async function resolveRunRef(
  config: Config,
  ref: string,
  log: Logger,
  options: { readonly kind?: LatestKind; readonly script?: string | undefined } = {},
): Promise<string> {
  return isLatestRef(ref) ? latestRunId(config, options.script, options.kind ?? 'any', log) : ref;
}

/** The newest guarded run (of `script`, when given): the one whose intent was written last. */
async function latestRunId(config: Config, script: string | undefined, kind: LatestKind, log: Logger): Promise<string> {
  const runs = new RunCollector();
  await scanLog(config.evidenceDir, [runs], warnSkipped(log));
  const wanted = (r: StartedRun): boolean =>
    (!script || r.intent.script === script) && (kind === 'any' || (r.post !== null && r.intent.backup.status === 'verified'));
  const last = runs.runs
    .filter(isStarted)
    .filter(wanted)
    .sort((a, b) => a.intent.ref.seq - b.intent.ref.seq)
    .at(-1);
  if (last) return last.runId;
  const what = `${kind === 'committed' ? 'committed guarded run with a verified backup' : 'guarded run'}${script ? ` of "${script}"` : ''}`;
  throw usageError(
    `No ${what} recorded in ${config.evidenceDir}.`,
    script || kind === 'committed'
      ? '`safe-run log` lists the runs recorded, with their scripts and statuses.'
      : 'Run a script first (`safe-run list` shows them).',
  );
}
