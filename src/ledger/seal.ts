import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { sql } from 'kysely';
import { canonicalJson, sha256Hex } from '../audit/canonical.js';
import type { AuditLog } from '../audit/log.js';
import { EVIDENCE_DIR_MODE, EVIDENCE_FILE_MODE } from '../audit/modes.js';
import type { Db } from '../db/connection.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import { LedgerStatementSchema, type DatabaseIdentity, type LedgerSealBody, type LedgerStatement } from '../records/index.js';
import { ledgerInstalled } from './state.js';

/**
 * Sealing: the ledger rows that are visible and not sealed yet are copied, with their kept
 * rows, into `<evidenceDir>/ledger/`, and a signed `ledger.seal` entry holds their ids and a
 * hash over them. A dropped database no longer takes its ledger along, and a sealed row
 * deleted or edited later no longer matches (tamper.ts).
 *
 * By visibility, not by "id above the last sealed": a transaction that commits late has a
 * smaller id than rows sealed before it. `sealed_in` is set in the transaction that read the
 * rows, after the entry is durable; if anything fails first, the rows stay unsealed and the
 * next seal takes them.
 */
export interface SealedLine {
  readonly statement: LedgerStatement;
  readonly hash: string;
  readonly rows: readonly { readonly side: 'old' | 'new'; readonly row: unknown }[];
}

export interface SealResult {
  readonly seq: number;
  readonly count: number;
  readonly keptRows: number;
  readonly file: string;
}

export const LEDGER_DIR = 'ledger';

/** A row's hash: the sealed copy's, and what tamper.ts recomputes from the live table. */
export function statementHash(statement: LedgerStatement): string {
  return sha256Hex(canonicalJson(statement));
}

export function sealHash(hashes: readonly string[]): string {
  return sha256Hex(hashes.join('\n'));
}

/**
 * The ledger rows as JSON in UTC, so that the seal and every later comparison print
 * timestamps alike. The handle must be a transaction (SET LOCAL).
 */
export async function readStatements(trx: Db, where: 'unsealed' | 'sealed'): Promise<LedgerStatement[]> {
  await sql`set local timezone = 'UTC'`.execute(trx);
  const filter = where === 'unsealed' ? sql`l.sealed_in is null and not l.pending_drop` : sql`l.sealed_in is not null`;
  const lock = where === 'unsealed' ? sql`for update of l skip locked` : sql``;
  const { rows } = await sql<{ s: unknown }>`
    select pg_catalog.to_jsonb(l) - 'sealed_in' - 'pending_drop' as s from safe_run.ledger l
     where ${filter} order by l.id ${lock}`.execute(trx);
  return rows.map((r) => LedgerStatementSchema.parse(r.s));
}

async function readKeptRows(trx: Db, ids: readonly number[]): Promise<Map<number, SealedLine['rows'][number][]>> {
  const { rows } = await sql<{ ledger_id: number; side: 'old' | 'new'; row: unknown }>`
    select ledger_id, side, row from safe_run.ledger_rows where ledger_id = any (${ids as number[]}::int8[])`.execute(trx);
  const byId = new Map<number, SealedLine['rows'][number][]>();
  for (const r of rows) {
    const list = byId.get(Number(r.ledger_id)) ?? [];
    list.push({ side: r.side, row: r.row });
    byId.set(Number(r.ledger_id), list);
  }
  return byId;
}

export async function sealLedger(db: Db, audit: AuditLog, evidenceDir: string, identity: DatabaseIdentity): Promise<SealResult | null> {
  if (!(await ledgerInstalled(db))) return null;
  return db.transaction().execute(async (trx) => {
    const statements = await readStatements(trx, 'unsealed');
    if (!statements.length) return null;
    const ids = statements.map((s) => s.id);
    const kept = await readKeptRows(trx, ids);
    const lines: SealedLine[] = statements.map((s) => ({ statement: s, hash: statementHash(s), rows: kept.get(s.id) ?? [] }));
    const hash = sealHash(lines.map((l) => l.hash));
    const text = lines.map((l) => JSON.stringify(l)).join('\n') + '\n';
    const file = path.join(LEDGER_DIR, `${identity.oid}-${ids[0]}-${ids[ids.length - 1]}-${hash.slice(0, 12)}.jsonl`);
    await mkdir(path.join(evidenceDir, LEDGER_DIR), { recursive: true, mode: EVIDENCE_DIR_MODE });
    // Kept rows can hold personal data: only the evidence directory's owner reads them.
    await writeFile(path.join(evidenceDir, file), text, { mode: EVIDENCE_FILE_MODE });
    const keptRows = lines.reduce((n, l) => n + l.rows.length, 0);
    const body: LedgerSealBody = {
      v: 1,
      database: identity.key,
      databaseOid: identity.oid,
      count: lines.length,
      hash,
      ids,
      keptRows,
      file,
      fileSha256: sha256Hex(text),
    };
    const entry = await audit.append<LedgerSealBody>('ledger.seal', body);
    await sql`update safe_run.ledger set sealed_in = ${entry.seq} where id = any (${ids}::int8[])`.execute(trx);
    return { seq: entry.seq, count: lines.length, keptRows, file };
  });
}

/**
 * For the commands that seal on the way (check, snapshot, the guarded run): a ledger that
 * cannot be sealed (a role that may not read safe_run) is a warning, never the command's failure.
 */
export async function sealQuietly(
  db: Db,
  audit: AuditLog,
  evidenceDir: string,
  identity: DatabaseIdentity,
  log: Logger,
): Promise<SealResult | null> {
  try {
    const sealed = await sealLedger(db, audit, evidenceDir, identity);
    if (sealed) log.debug('ledger sealed', { seq: sealed.seq, statements: sealed.count, keptRows: sealed.keptRows });
    return sealed;
  } catch (error) {
    log.warn('could not seal the change ledger into the evidence directory; the next check, snapshot or run tries again', {
      error: errorMessage(error),
    });
    return null;
  }
}
