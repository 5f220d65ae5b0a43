import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { BackupRecord } from '../records/index.js';
import { failedBackupRecord, runBackup, type BackupOptions } from './backup.js';
import type { BackupMode } from './mode.js';

/** backup.mode "pg_dump": dump the scope on the pre-snapshot's exported snapshot (SPEC step 5). */
export function pgDumpMode(options: Omit<BackupOptions, 'snapshotId'>): BackupMode {
  let held: BackupRecord | null = null;
  return {
    beforeSnapshot: async () => {},
    duringSnapshot: async (snapshotId) => {
      held = await runBackup({ ...options, snapshotId }).catch((error: unknown) =>
        failedBackupRecord(options.scope, options.tables, error),
      );
    },
    record: async () => held ?? failedBackupRecord(options.scope, options.tables, new Error('the backup never ran')),
    discard: async () => {
      if (held?.path) await rm(path.join(options.evidenceDir, held.path), { recursive: true, force: true }).catch(() => {});
    },
    afterCommit: async () => null,
  };
}
