import { z } from '../zod.js';
import { parseLsn } from '../blame/lsn.js';
import { ExitCode, SafeRunError } from '../errors.js';
import { pgbackrest, type PgBackRestCall } from './pgbackrest.js';

/** The part of `pgbackrest info --output=json` we rely on (pgBackRest 2.x). */
const InfoSchema = z.array(
  z.object({
    name: z.string(),
    status: z.object({ code: z.number(), message: z.string() }),
    db: z.array(z.object({ 'system-id': z.string(), version: z.string() })).default([]),
    archive: z.array(z.object({ id: z.string(), max: z.string().nullable().optional() })).default([]),
    backup: z
      .array(
        z.object({
          label: z.string(),
          type: z.string(),
          error: z.boolean().optional(),
          lsn: z.object({ start: z.string(), stop: z.string() }).optional(),
        }),
      )
      .default([]),
  }),
);

export interface StanzaInfo {
  readonly name: string;
  readonly status: { readonly code: number; readonly message: string };
  /** The cluster the stanza currently backs up (the last db entry). */
  readonly systemId: string | null;
  readonly pgVersion: string | null;
  /** Newest WAL segment in the archive of the current database, e.g. 000000010000000000000005. */
  readonly archiveMax: string | null;
  readonly backups: readonly { readonly label: string; readonly type: string; readonly stopLsn: string | null }[];
}

export async function readStanzaInfo(call: PgBackRestCall): Promise<StanzaInfo> {
  const text = await pgbackrest(call, 'info', ['--output=json']);
  // system-id is a 64-bit integer: JSON.parse would round it, so it is read as a string.
  const parsed = InfoSchema.safeParse(JSON.parse(text.replace(/"system-id"\s*:\s*(\d+)/g, '"system-id":"$1"')));
  const stanza = parsed.success ? parsed.data.find((s) => s.name === call.config.stanza) : undefined;
  if (!stanza) {
    throw new SafeRunError(
      `pgbackrest info did not describe stanza "${call.config.stanza}"${parsed.success ? '' : ` (${parsed.error.issues[0]?.message})`}.`,
      ExitCode.backupFailed,
      `Create it first: pgbackrest --stanza=${call.config.stanza} stanza-create, then take a full backup.`,
    );
  }
  const db = stanza.db.at(-1);
  return {
    name: stanza.name,
    status: stanza.status,
    systemId: db?.['system-id'] ?? null,
    pgVersion: db?.version ?? null,
    archiveMax: stanza.archive.at(-1)?.max ?? null,
    backups: stanza.backup.filter((b) => !b.error).map((b) => ({ label: b.label, type: b.type, stopLsn: b.lsn?.stop ?? null })),
  };
}

/**
 * The newest backup a restore can start from and still stop at `lsn`: it must have ended
 * before that position (a backup that finished later cannot be rewound to it).
 */
export function newestBackupBefore(info: StanzaInfo, lsn: string): StanzaInfo['backups'][number] {
  const target = parseLsn(lsn);
  const usable = info.backups.filter((b) => {
    const stop = parseLsn(b.stopLsn);
    return stop !== null && target !== null && stop <= target;
  });
  const found = usable.at(-1);
  if (!found) {
    throw new SafeRunError(
      `Stanza "${info.name}" has no backup that ended before WAL position ${lsn}: a point-in-time restore to just before this run would have nothing to start from.`,
      ExitCode.backupFailed,
      `The script did not run. Take a full backup (pgbackrest --stanza=${info.name} --type=full backup as the postgres user), or set backup.pgbackrest.type to "incr".`,
    );
  }
  return found;
}
