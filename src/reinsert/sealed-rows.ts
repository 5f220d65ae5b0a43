import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { canonicalJson, sha256Hex } from '../audit/canonical.js';
import { readEntries, warnSkipped } from '../audit/read.js';
import { parseExact } from '../db/exact-json.js';
import { errorMessage } from '../errors.js';
import type { SealedRow } from '../ledger/seal.js';
import type { Logger } from '../logger.js';
import type { LedgerStatement } from './ledger-rows.js';
import type { JsonRow } from './types.js';

/**
 * The kept rows a recovery puts back, as the signed evidence holds them. The live kept rows
 * (inline in safe_run.ledger, or in safe_run.ledger_rows) can be edited by whoever may write
 * the safe_run schema; once sealed, a copy sits in the evidence directory with its sha256 in
 * a signed `ledger.seal` entry. So for every sealed statement the sealed rows are compared
 * with the live ones, and where they differ the sealed ones go back, with a warning that
 * names the statement. A seal whose rows file is missing or altered cannot vouch for
 * anything: its statements keep their live rows, with a warning too. Unsealed statements
 * (written since the last check, snapshot or run) have only their live rows.
 */
export async function withSealedRows(evidenceDir: string, statements: readonly LedgerStatement[], log: Logger): Promise<LedgerStatement[]> {
  const sealed = statements.filter((s) => s.sealedIn !== null);
  if (!sealed.length) return [...statements];
  const vouched = await readSealedRows(evidenceDir, new Map(sealed.map((s) => [Number(s.id), s.sealedIn!])), log);
  return statements.map((s) => {
    const rows = vouched.get(Number(s.id));
    if (!rows || (sameRows(rows.old, s.old) && sameRows(rows.new, s.new))) return s;
    log.warn(
      `ledger statement ${s.id}: its kept rows in the database differ from those sealed in entry #${s.sealedIn}; ` +
        'the sealed (signed) rows are used. Someone who may write the safe_run schema edited them after the seal: ' +
        "find out who in the server's log, and keep the evidence directory as it is.",
    );
    return { ...s, old: rows.old, new: rows.new };
  });
}

interface KeptSides {
  readonly old: JsonRow[];
  readonly new: JsonRow[];
}

/** The sealed rows of these statements (ledger id -> the seal's seq), from the rows files whose sha256 the seals signed. */
async function readSealedRows(evidenceDir: string, sealOf: ReadonlyMap<number, number>, log: Logger): Promise<Map<number, KeptSides>> {
  const seqs = new Set(sealOf.values());
  const out = new Map<number, KeptSides>();
  for await (const entry of readEntries(evidenceDir, warnSkipped(log))) {
    if (entry.kind !== 'ledger.seal' || !seqs.has(entry.seq)) continue;
    const { rowsFile, rowsFileSha256 } = entry.body;
    let text: string;
    try {
      text = await readFile(path.join(evidenceDir, rowsFile), 'utf8');
    } catch (error) {
      log.warn(
        `the sealed rows of entry #${entry.seq} cannot be read (${errorMessage(error)}); its statements' live rows are used, unverified`,
      );
      continue;
    }
    if (sha256Hex(text) !== rowsFileSha256) {
      log.warn(
        `the sealed rows file ${rowsFile} differs from its signed sha256 (entry #${entry.seq}); its statements' live rows are used, unverified`,
      );
      continue;
    }
    // Every sealed statement of this seal has a place, even one whose rows were all cut by the cap.
    for (const [id, seq] of sealOf) if (seq === entry.seq) out.set(id, { old: [], new: [] });
    for (const line of text.split('\n')) {
      if (!line) continue;
      const row = parseExact(line) as SealedRow;
      out.get(row.ledger_id)?.[row.side].push(row.row as JsonRow);
    }
  }
  return out;
}

/** The same rows, in any order. */
function sameRows(a: readonly JsonRow[], b: readonly JsonRow[]): boolean {
  if (a.length !== b.length) return false;
  const key = (rows: readonly JsonRow[]): string => rows.map(canonicalJson).sort().join('\n');
  return key(a) === key(b);
}
