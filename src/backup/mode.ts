import type { BackupRecord, PitrPostRecord, Snapshot } from '../records/index.js';
import { skippedBackupRecord } from './backup.js';
import type { BackupScope } from './scope.js';
import type { Logger } from '../logger.js';

/**
 * How a guarded run keeps the state before its script: chosen once per run from
 * `backup.mode`, then driven by the pipeline at four fixed moments. No step throws for a
 * backup problem: it becomes a `failed` record, the intent says so and the script never runs.
 */
export interface BackupMode {
  /** Before the pre-snapshot: work that must be finished before the instant the snapshot fixes. */
  beforeSnapshot(): Promise<void>;
  /** While the pre-snapshot's exported snapshot is open (pg_dump reads exactly the rows counted). */
  duringSnapshot(exportedSnapshotId: string): Promise<void>;
  /** After the pre-snapshot: the backup record the signed intent carries. */
  record(pre: Snapshot): Promise<BackupRecord>;
  /** The run stops before an intent names the backup: remove what it wrote. */
  discard(): Promise<void>;
  /** After COMMIT: confirmation that the committed state is recoverable (null when nothing to confirm). */
  afterCommit(commitLsn: string): Promise<PitrPostRecord | null>;
}

/** A dry run commits nothing, so there is no state it could ever need restoring to: no dump, no archive check. */
export function dryRunMode(scope: BackupScope, log: Logger): BackupMode {
  return {
    beforeSnapshot: async () => {},
    duringSnapshot: async () => {},
    record: async () => {
      log.info('no backup for a dry run', { scope });
      return skippedBackupRecord(scope);
    },
    discard: async () => {},
    afterCommit: async () => null,
  };
}
