import type { TocEntry } from '../backup/archive.js';
import { execPgRestore } from '../backup/pg-restore.js';
import { ExitCode, SafeRunError } from '../errors.js';
import type { TableShape } from '../reinsert/shape.js';
import type { JsonRow } from '../reinsert/types.js';
import { parseCopyBlocks } from './copy-text.js';
import { dataEntries } from './toc.js';

export interface ArchiveReader {
  readonly pgRestore: string;
  /** A verified archive (restore/archive-check.ts): its bytes were hashed against the signed intent. */
  readonly archive: string;
  readonly toc: readonly TocEntry[];
  readonly env: Record<string, string>;
}

/**
 * One table's rows from a run's archive, without a scratch database: pg_restore prints the
 * table's COPY data (`-f -`, no connection, so no CREATEDB and nothing left behind), and each
 * row becomes an object keyed by column, the shape the re-insert engine takes. json and jsonb
 * text is parsed back into documents; every other value is the type's own text input.
 */
export async function readArchiveRows(reader: ArchiveReader, shape: TableShape): Promise<JsonRow[]> {
  const items = dataEntries(reader.toc, [shape]);
  if (!items.some((e) => e.type === 'TABLE DATA')) {
    throw new SafeRunError(
      `The archive ${reader.archive} holds no data for ${shape.key}.`,
      ExitCode.backupFailed,
      'Pick another run: `safe-run backups` lists them.',
    );
  }
  const copy = await execPgRestore({
    bin: reader.pgRestore,
    items,
    args: ['--data-only', '--file=-', reader.archive],
    env: reader.env,
    failure: (how, stderr) =>
      new SafeRunError(
        `pg_restore could not read ${shape.key} from ${reader.archive}: ${stderr || how}`,
        ExitCode.backupFailed,
        'The archive is unreadable; restore from another run (`safe-run backups`).',
      ),
  });
  return toJsonRows(copy, shape);
}

function toJsonRows(text: string, shape: TableShape): JsonRow[] {
  const rows: JsonRow[] = [];
  for (const block of parseCopyBlocks(text)) {
    const gone = block.columns.filter((c) => !shape.columns.includes(c));
    if (gone.length) {
      throw new SafeRunError(
        `${shape.key} has changed since the backup: it has no column ${gone.join(', ')} any more, so its rows cannot go back as they were.`,
        ExitCode.usage,
        'Restore into a scratch database (leave out --in-place) and copy the rows you need by hand.',
      );
    }
    const json = new Set(shape.jsonColumns);
    for (const fields of block.rows) {
      const row: Record<string, unknown> = {};
      block.columns.forEach((column, i) => {
        const value = fields[i] ?? null;
        row[column] = value !== null && json.has(column) ? JSON.parse(value) : value;
      });
      rows.push(row);
    }
  }
  return rows;
}
