import { existsSync } from 'node:fs';
import path from 'node:path';
import { readEntries } from '../audit/read.js';
import type { Config } from '../config/config.js';
import { checkBackupFile } from '../history/backup-check.js';
import type { BackupRecord, TableKey } from '../records/index.js';
import type { PrunedAt } from './find-run.js';

/** One archive a run or exec promised, as `safe-run backups` lists it. */
export interface BackupRow {
  readonly runId: string;
  /** The script's name, or `exec <label or program>`. */
  readonly source: string;
  readonly ts: string;
  readonly seq: number;
  readonly tables: readonly TableKey[];
  readonly path: string;
  readonly sha256: string;
  readonly bytes: number;
  /** Critical tables when it ran (config and script), for prune's "newest of each critical table". */
  readonly critical: readonly TableKey[];
  /** Its file is there and hashes to the signed sha256 (false: changed; null: not checked or gone). */
  readonly verified: boolean | null;
  readonly exists: boolean;
  readonly pruned: PrunedAt | null;
}

/**
 * Every verified backup the log knows, oldest first, with what became of it. `check` hashes
 * each file that is still there against its signed sha256 (what a restore would do first).
 */
export async function listBackups(config: Config, check: boolean): Promise<BackupRow[]> {
  const rows: (Omit<BackupRow, 'verified' | 'exists' | 'pruned'> & { record: BackupRecord })[] = [];
  const pruned = new Map<string, PrunedAt>();
  const configCritical = Object.keys(config.criticalTables);
  for await (const entry of readEntries(config.evidenceDir)) {
    if (entry.kind === 'prune') {
      for (const p of entry.body.pruned) pruned.set(p.runId, { ts: entry.ts, seq: entry.seq });
      continue;
    }
    if ((entry.kind !== 'run.intent' && entry.kind !== 'exec.intent') || !entry.runId) continue;
    const backup = entry.body.backup;
    if (backup.status !== 'verified' || !backup.path || !backup.sha256) continue;
    const isRun = entry.kind === 'run.intent';
    rows.push({
      runId: entry.runId,
      source: isRun ? entry.body.script.name : `exec ${entry.body.label ?? entry.body.command[0] ?? ''}`.trim(),
      ts: entry.ts,
      seq: entry.seq,
      tables: backup.tables,
      path: backup.path,
      sha256: backup.sha256,
      bytes: backup.bytes,
      critical: [...new Set([...configCritical, ...(isRun ? entry.body.script.critical : [])])],
      record: backup,
    });
  }
  const out: BackupRow[] = [];
  for (const { record, ...row } of rows) {
    const exists = existsSync(path.resolve(config.evidenceDir, row.path));
    const verified = check && exists ? ((await checkBackupFile(config.evidenceDir, record))?.sha256Matches ?? null) : null;
    out.push({ ...row, exists, verified, pruned: pruned.get(row.runId) ?? null });
  }
  return out;
}
