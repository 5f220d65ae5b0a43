import { stat } from 'node:fs/promises';
import path from 'node:path';
import { sql } from 'kysely';
import type { Db } from '../db/connection.js';
import type { SealRecord } from './findings.js';

/**
 * One string per seal that changes whenever anything the tamper check compares could have
 * changed: the seal itself, its live statements and kept rows, and its two copies on disk.
 * check compares a seal in full only when its stamp differs from the one it found intact
 * last time (history/check.ts keeps them beside its scan checkpoint, under the same MAC).
 *
 * The live side is each row's identity and version: `id` and `xmin`, summed as 64-bit hashes
 * per seal by the server, with the row count. An UPDATE writes a new row version with a new
 * xmin, a DELETE lowers the count, and a row deleted and inserted again gets a new xmin, so
 * no SQL write keeps a stamp. The server assigns xmin: matching an old sum would take a
 * 64-bit hash collision. A restored or recreated database has other xmins: every seal is
 * compared in full once, then stamped again.
 *
 * The copies are stamped by inode, size and ctime: a write or a rename changes ctime, and
 * only the kernel sets it.
 */
export async function sealStamps(db: Db, evidenceDir: string, seals: readonly SealRecord[]): Promise<Map<number, string>> {
  const seqs = seals.map((s) => s.seq);
  const { rows: statements } = await sql<{ seq: string; n: string; h: string }>`
    select l.sealed_in as seq, count(*) as n, sum(pg_catalog.hashtextextended(l.id::text || '/' || l.xmin::text, 0))::text as h
      from safe_run.ledger l where l.sealed_in = any (${seqs}::int8[]) group by 1`.execute(db);
  const { rows: kept } = await sql<{ seq: string; n: string; h: string }>`
    select l.sealed_in as seq, count(*) as n, sum(pg_catalog.hashtextextended(r.ledger_id::text || '/' || r.xmin::text, 0))::text as h
      from safe_run.ledger_rows r join safe_run.ledger l on l.id = r.ledger_id
     where l.sealed_in = any (${seqs}::int8[]) group by 1`.execute(db);
  const live = (rows: readonly { seq: string; n: string; h: string }[]) => new Map(rows.map((r) => [Number(r.seq), `${r.n}:${r.h}`]));
  const [byStatements, byKept] = [live(statements), live(kept)];
  const stamps = new Map<number, string>();
  for (const seal of seals) {
    const files = await Promise.all([seal.body.file, seal.body.rowsFile].map((f) => fileStamp(path.join(evidenceDir, f))));
    const parts = [seal.body.hash, byStatements.get(seal.seq) ?? '0', byKept.get(seal.seq) ?? '0', ...files];
    stamps.set(seal.seq, parts.join('|'));
  }
  return stamps;
}

async function fileStamp(file: string): Promise<string> {
  try {
    const s = await stat(file, { bigint: true });
    return `${s.ino}:${s.size}:${s.ctimeNs}`;
  } catch {
    return 'unreadable';
  }
}
