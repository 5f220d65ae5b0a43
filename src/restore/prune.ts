import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { databaseAnchor, openAuditLog } from '../audit/log.js';
import type { Config } from '../config/config.js';
import type { TargetHandle } from '../db/target.js';
import type { Logger } from '../logger.js';
import type { PrunedBackup, TableKey } from '../records/index.js';
import { readOperator } from '../run/operator.js';
import { listBackups, type BackupRow } from './backups.js';

export interface PruneOptions {
  /** Keep the newest N backups. */
  readonly keep: number | null;
  /** Keep the backups of the last D days. */
  readonly keepDays: number | null;
  readonly dryRun: boolean;
}

export interface PruneResult {
  readonly dryRun: boolean;
  readonly pruned: readonly PrunedBackup[];
  /** Kept although the rule would prune it, and why. */
  readonly protected: readonly { readonly runId: string; readonly why: string }[];
  readonly kept: number;
  readonly entry: { readonly seq: number; readonly hash: string } | null;
}

/**
 * `safe-run prune`: delete old backups, never the audit log, and never the newest backup of
 * each script or of each critical table (the one a 3 a.m. restore reaches for). The signed
 * `prune` entry is written first; only then are the archives removed, so no archive
 * disappears without a record of it.
 */
export async function pruneBackups(config: Config, options: PruneOptions, target: TargetHandle, log: Logger): Promise<PruneResult> {
  const present = (await listBackups(config, false)).filter((b) => b.exists && !b.pruned);
  const newestFirst = [...present].sort((a, b) => b.seq - a.seq);
  const guard = protectedBackups(newestFirst);
  const cutoff = options.keepDays === null ? null : Date.now() - options.keepDays * 86_400_000;
  const keptByRule = (b: BackupRow, i: number) =>
    (options.keep !== null && i < options.keep) || (cutoff !== null && Date.parse(b.ts) >= cutoff);
  const doomed = newestFirst.filter((b, i) => !keptByRule(b, i) && !guard.has(b.runId));
  const pruned = doomed.map((b): PrunedBackup => ({
    runId: b.runId,
    source: b.source,
    path: b.path,
    sha256: b.sha256,
    bytes: b.bytes,
    tables: b.tables,
  }));
  const result = {
    dryRun: options.dryRun,
    pruned,
    protected: newestFirst
      .filter((b, i) => !keptByRule(b, i) && guard.has(b.runId))
      .map((b) => ({ runId: b.runId, why: guard.get(b.runId)! })),
    kept: present.length - pruned.length,
  };
  if (options.dryRun) return { ...result, entry: null };

  const live = await target.openIfPossible(log);
  const audit = await openAuditLog({
    evidenceDir: config.evidenceDir,
    signingKeyPath: config.signingKey,
    anchor: live ? databaseAnchor(live.db) : null,
    log,
  });
  const entry = await audit.append('prune', {
    rule: { keep: options.keep, keepDays: options.keepDays },
    pruned,
    kept: result.kept,
    operator: await readOperator(),
    host: os.hostname(),
  });
  for (const b of pruned) {
    await rm(path.resolve(config.evidenceDir, b.path), { recursive: true, force: true });
    log.info('backup pruned', { runId: b.runId, path: b.path });
  }
  return { ...result, entry: { seq: entry.seq, hash: entry.hash } };
}

/** The newest backup of each script, and the newest holding each critical table, with why. */
function protectedBackups(newestFirst: readonly BackupRow[]): Map<string, string> {
  const why = new Map<string, string>();
  const scripts = new Set<string>();
  const tables = new Set<TableKey>();
  for (const b of newestFirst) {
    if (!scripts.has(b.source)) {
      scripts.add(b.source);
      why.set(b.runId, `newest backup of ${b.source}`);
    }
    for (const t of b.critical.filter((t) => b.tables.includes(t) && !tables.has(t))) {
      tables.add(t);
      if (!why.has(b.runId)) why.set(b.runId, `newest backup of the critical table ${t}`);
    }
  }
  return why;
}
