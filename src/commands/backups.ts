import type { Config } from '../config/config.js';
import { listBackups, type BackupRow } from '../restore/backups.js';
import { emit, loadContext, type GlobalArgs } from './context.js';
import type { CommandBody } from './registry.js';

export type { BackupRow };

export interface BackupsResult {
  readonly backups: readonly BackupRow[];
}

/** `safe-run backups`: every backup the log knows, newest first, with whether it is still there and intact. */
export async function backups(config: Config): Promise<BackupsResult> {
  return { backups: (await listBackups(config, true)).reverse() };
}

export function renderBackups(r: BackupsResult): string {
  if (!r.backups.length) return 'No backups recorded (scope none, or no run yet).';
  const lines = ['run                         script                      time                  size       verified  tables'];
  for (const b of r.backups) {
    const state = b.pruned ? `pruned ${b.pruned.ts} (#${b.pruned.seq})` : !b.exists ? 'MISSING' : b.verified ? 'yes' : 'CHANGED';
    lines.push(
      `${b.runId.padEnd(28)}${b.source.slice(0, 26).padEnd(28)}${b.ts.slice(0, 19).padEnd(22)}${size(b.bytes).padStart(9)}  ${state.padEnd(9)} ${b.tables.join(', ')}`,
    );
  }
  lines.push(
    '',
    'restore one: safe-run restore <run> --table T (scratch database) or --in-place --table T; prune old ones: safe-run prune --keep N',
  );
  return lines.join('\n');
}

function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
}

export const backupsCommand: CommandBody<GlobalArgs> = {
  builder: (yargs) => yargs.example('$0 backups', 'Which runs can be restored from').example('$0 backups --json', 'The same, as JSON'),
  handler: async (argv) => {
    const ctx = await loadContext(argv);
    emit(ctx, await backups(ctx.config), renderBackups);
  },
};
