import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { sql, type RawBuilder } from 'kysely';
import { canonicalJson, sha256Hex } from '../audit/canonical.js';
import type { AuditLog } from '../audit/log.js';
import { EVIDENCE_DIR_MODE, EVIDENCE_FILE_MODE } from '../audit/modes.js';
import type { Db } from '../db/connection.js';
import { parseExact, stringifyExact } from '../db/exact-json.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import { LedgerStatementSchema, type DatabaseIdentity, type LedgerSealBody, type LedgerStatement } from '../records/index.js';
import type { SealRecord } from './findings.js';
import { inlineRowsColumns, keptRowsSql } from './kept-rows.js';
import { ledgerInstalled } from './state.js';

/**
 * Sealing: the ledger rows that are visible and not sealed yet are copied, with their kept
 * rows, into `<evidenceDir>/ledger/`, and a signed `ledger.seal` entry holds their ids and a
 * hash over them (each line also holds a hash of the statement's kept rows). A dropped
 * database no longer takes its ledger along, and a sealed row or kept row deleted or edited
 * later no longer matches (findings.ts).
 *
 * By visibility, not by "id above the last sealed": a transaction that commits late has a
 * smaller id than rows sealed before it. `sealed_in` is set in the transaction that read the
 * rows, after the entry is durable; if anything fails first, the rows stay unsealed and the
 * next seal takes them.
 */
export interface SealedLine {
  readonly statement: LedgerStatement;
  readonly hash: string;
  /** How many kept rows the rows file holds for it. */
  readonly kept: number;
  /**
   * keptRowsHashSql of its kept rows at the seal, null when it kept none; absent in seals
   * written before kept rows were compared (only `kept` is compared for those).
   */
  readonly keptHash?: string | null;
}

/** One line of the rows file: kept rows live beside the statements, so blame reads statements without them. */
export interface SealedRow {
  readonly ledger_id: number;
  readonly side: 'old' | 'new';
  readonly row: unknown;
}

export interface SealResult {
  readonly seq: number;
  readonly count: number;
  readonly keptRows: number;
  readonly file: string;
  /** The entry as a reader of the log would see it, for a command that read the log before sealing. */
  readonly seal: SealRecord;
}

export const LEDGER_DIR = 'ledger';

/** A row's hash: the sealed copy's, and what findings.ts recomputes from the live table. */
export function statementHash(statement: LedgerStatement): string {
  return sha256Hex(canonicalJson(statement));
}

export function sealHash(hashes: readonly string[]): string {
  return sha256Hex(hashes.join('\n'));
}

/**
 * The ledger rows as JSON in UTC, so that the seal and every later comparison print
 * timestamps alike. The handle must be a transaction (SET LOCAL). `about` narrows the read to
 * what blame needs of one table: its statements, and every DELETE and TRUNCATE (what a
 * cascade from it took along).
 */
export async function readStatements(
  trx: Db,
  where: 'unsealed' | 'unsealed-visible' | { readonly ids: readonly number[] },
  about?: { readonly schema: string; readonly table: string },
): Promise<LedgerStatement[]> {
  await sql`set local timezone = 'UTC'`.execute(trx);
  const filter =
    typeof where === 'object' ? sql`l.id = any (${where.ids as number[]}::int8[])` : sql`l.sealed_in is null and not l.pending_drop`;
  const narrow = about
    ? sql`and ((l.table_schema = ${about.schema} and l.table_name = ${about.table}) or l.operation in ('DELETE', 'TRUNCATE'))`
    : sql``;
  const lock = where === 'unsealed' ? sql`for update of l skip locked` : sql``;
  // The inline kept rows are not the statement: they go to the rows file, as the others do.
  const { rows } = await sql<{ s: unknown }>`
    select pg_catalog.to_jsonb(l) - 'sealed_in' - 'pending_drop' - 'old_rows' - 'new_rows' as s from safe_run.ledger l
     where ${filter} ${narrow} order by l.id ${lock}`.execute(trx);
  return rows.map((r) => LedgerStatementSchema.parse(r.s));
}

/**
 * One hash per statement over its kept rows, computed by the server from `row::text` (jsonb
 * prints one canonical text for one value, whatever the client does with numbers): the seal
 * stores it, and check recomputes it in one query, so an edit of a sealed statement's kept
 * rows is found without sending a row to the client. Rows hashed one by one and sorted:
 * ledger_rows has no order of its own.
 */
export function keptRowsHashSql(ledgerFilter: RawBuilder<unknown>, inline: boolean): RawBuilder<unknown> {
  // bytea, sorted by memcmp: hex text sorted under a collation cost a third more (100,000 rows).
  return sql`
    select k.ledger_id, pg_catalog.count(*)::int as n,
           pg_catalog.encode(pg_catalog.sha256(pg_catalog.string_agg(k.h, ''::bytea order by k.h)), 'hex') as hash
      from (select r.ledger_id, pg_catalog.sha256(pg_catalog.convert_to(r.side || ' ' || r.row::text, 'UTF8')) as h
              from (${keptRowsSql(ledgerFilter, inline)}) r) k
     group by k.ledger_id`;
}

export interface KeptHash {
  readonly n: number;
  readonly hash: string;
}

/** keptRowsHashSql by ledger id, for the statements `ledgerFilter` selects (alias `l`). */
export async function readKeptHashes(db: Db, ledgerFilter: RawBuilder<unknown>, inline: boolean): Promise<Map<number, KeptHash>> {
  const { rows } = await sql<{ ledger_id: string; n: number; hash: string }>`${keptRowsHashSql(ledgerFilter, inline)}`.execute(db);
  return new Map(rows.map((r) => [Number(r.ledger_id), { n: r.n, hash: r.hash }]));
}

async function readKeptRows(trx: Db, ids: readonly number[], inline: boolean): Promise<SealedRow[]> {
  // The rows as text, parsed exactly: the sealed copy holds each number as PostgreSQL wrote it (db/exact-json.ts).
  const { rows } = await sql<{ ledger_id: string; side: 'old' | 'new'; row: string }>`
    select k.ledger_id, k.side, k.row::text as row from (${keptRowsSql(sql`l.id = any (${ids as number[]}::int8[])`, inline)}) k
     order by k.ledger_id, k.side desc`.execute(trx);
  return rows.map((r) => ({ ledger_id: Number(r.ledger_id), side: r.side, row: parseExact(r.row) }));
}

export async function sealLedger(db: Db, audit: AuditLog, evidenceDir: string, identity: DatabaseIdentity): Promise<SealResult | null> {
  if (!(await ledgerInstalled(db))) return null;
  return db.transaction().execute(async (trx) => {
    const statements = await readStatements(trx, 'unsealed');
    if (!statements.length) return null;
    const ids = statements.map((s) => s.id);
    const inline = await inlineRowsColumns(trx);
    const kept = await readKeptRows(trx, ids, inline);
    const hashes = await readKeptHashes(trx, sql`l.id = any (${ids}::int8[])`, inline);
    const keptBy = new Map<number, number>();
    for (const r of kept) keptBy.set(r.ledger_id, (keptBy.get(r.ledger_id) ?? 0) + 1);
    const lines: SealedLine[] = statements.map((s) => ({
      statement: s,
      hash: statementHash(s),
      kept: keptBy.get(s.id) ?? 0,
      keptHash: hashes.get(s.id)?.hash ?? null,
    }));
    const hash = sealHash(lines.map((l) => l.hash));
    const text = jsonLines(lines);
    const rowsText = jsonLines(kept);
    const base = path.join(LEDGER_DIR, `${identity.oid}-${ids[0]}-${ids[ids.length - 1]}-${hash.slice(0, 12)}`);
    await mkdir(path.join(evidenceDir, LEDGER_DIR), { recursive: true, mode: EVIDENCE_DIR_MODE });
    // Kept rows can hold personal data: only the evidence directory's owner reads them.
    await writeFile(path.join(evidenceDir, `${base}.jsonl`), text, { mode: EVIDENCE_FILE_MODE });
    await writeFile(path.join(evidenceDir, `${base}.rows.jsonl`), rowsText, { mode: EVIDENCE_FILE_MODE });
    const body: LedgerSealBody = {
      v: 1,
      database: identity.key,
      databaseOid: identity.oid,
      count: lines.length,
      hash,
      ids,
      keptRows: kept.length,
      file: `${base}.jsonl`,
      fileSha256: sha256Hex(text),
      rowsFile: `${base}.rows.jsonl`,
      rowsFileSha256: sha256Hex(rowsText),
    };
    const entry = await audit.append('ledger.seal', body);
    await sql`update safe_run.ledger set sealed_in = ${entry.seq} where id = any (${ids}::int8[])`.execute(trx);
    return { seq: entry.seq, count: lines.length, keptRows: kept.length, file: body.file, seal: { seq: entry.seq, ts: entry.ts, body } };
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

function jsonLines(items: readonly unknown[]): string {
  return items.map((i) => stringifyExact(i)).join('\n') + (items.length ? '\n' : '');
}
