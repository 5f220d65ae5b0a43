import { readEntries } from '../audit/read.js';
import { ExitCode, SafeRunError, usageError } from '../errors.js';
import type { BackupRecord, RecordOf, Snapshot } from '../records/index.js';

/** A signed intent that promised a backup: a guarded run's, or a wrapped command's. */
export interface RestorableRun {
  readonly runId: string;
  readonly kind: 'run.intent' | 'exec.intent';
  readonly seq: number;
  readonly hash: string;
  readonly ts: string;
  /** The script's name, or `exec <label or program>`. */
  readonly source: string;
  readonly backup: BackupRecord;
  /** The pre-snapshot: the counts the backup holds. */
  readonly snapshot: Snapshot;
  /** The signed `prune` entry that deleted its archive, if one did. */
  readonly pruned: PrunedAt | null;
}

export interface PrunedAt {
  readonly ts: string;
  readonly seq: number;
}

/**
 * The intent of a run or exec, by its id or a unique prefix of it (what an operator copies
 * from `safe-run log`). Case is ignored: ULIDs are upper case, people type lower case.
 */
export async function findRestorableRun(evidenceDir: string, ref: string): Promise<RestorableRun> {
  const wanted = ref.trim().toUpperCase();
  if (!wanted) throw usageError('No run given.', 'Pass a run id or a prefix of one: `safe-run log` lists them.');
  let matches: RestorableRun[] = [];
  // Read to the end: a prune entry after the intent says the archive is gone, and when.
  const pruned = new Map<string, PrunedAt>();
  for await (const entry of readEntries(evidenceDir)) {
    if (entry.kind === 'prune') {
      for (const p of entry.body.pruned) pruned.set(p.runId, { ts: entry.ts, seq: entry.seq });
      continue;
    }
    if ((entry.kind !== 'run.intent' && entry.kind !== 'exec.intent') || !entry.runId) continue;
    const id = entry.runId.toUpperCase();
    if (id === wanted) matches = [restorable(entry, entry.runId)];
    else if (id.startsWith(wanted) && !matches.some((m) => m.runId.toUpperCase() === wanted)) matches.push(restorable(entry, entry.runId));
  }
  matches = matches.map((m) => ({ ...m, pruned: pruned.get(m.runId) ?? null }));
  if (matches.length === 1) {
    assertNotPruned(matches[0]!);
    return matches[0]!;
  }
  if (matches.length === 0) {
    throw usageError(
      `No run ${ref} in ${evidenceDir}.`,
      'Check the id with `safe-run log`, and that SAFE_RUN_EVIDENCE_DIR / "evidenceDir" points at the right evidence.',
    );
  }
  const listed = matches.slice(0, 5).map((m) => `${m.runId} (${m.source}, ${m.ts})`);
  throw usageError(
    `${matches.length} runs start with ${ref}: ${listed.join(', ')}${matches.length > 5 ? ', …' : ''}.`,
    'Give more characters of the run id.',
  );
}

/** Exit 4, as for any missing backup, but saying when it went and which entry recorded it. */
function assertNotPruned(run: RestorableRun): void {
  if (!run.pruned) return;
  throw new SafeRunError(
    `The backup of run ${run.runId} was pruned at ${run.pruned.ts} (signed prune entry #${run.pruned.seq}); there is nothing to restore from.`,
    ExitCode.backupFailed,
    'Pick a later run that holds the table: `safe-run backups` lists the backups that are still there.',
  );
}

function restorable(entry: RecordOf<'run.intent'> | RecordOf<'exec.intent'>, runId: string): RestorableRun {
  const common = { runId, seq: entry.seq, hash: entry.hash, ts: entry.ts, pruned: null };
  if (entry.kind === 'exec.intent') {
    const { body } = entry;
    return {
      ...common,
      kind: 'exec.intent',
      source: `exec ${body.label ?? body.command[0] ?? ''}`.trim(),
      backup: body.backup,
      snapshot: body.snapshot,
    };
  }
  const { body } = entry;
  return { ...common, kind: 'run.intent', source: body.script.name, backup: body.backup, snapshot: body.snapshot };
}
