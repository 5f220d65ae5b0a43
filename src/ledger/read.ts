import type { Db } from '../db/connection.js';
import type { AuditRecord, LedgerStatement } from '../records/index.js';
import { readCopiesOf, type SealRecord } from './findings.js';
import { readStatements } from './seal.js';
import type { Mention } from './sealed-copy.js';
import type { TableName } from './install.js';
import { ledgerInstalled } from './state.js';

/**
 * Every ledger statement blame can know of: the sealed copies in the evidence directory
 * (which outlive a dropped database) and the live rows not sealed yet. A recreated database
 * starts its ids again, so statements are told apart by database oid and id.
 */
export interface KnownStatement {
  /** As parsed: wrapped, not spread into a new object (a copy of 19 members per statement costs more than the parse). */
  readonly statement: LedgerStatement;
  readonly databaseOid: number;
  /** The ledger.seal entry that holds it; null for a live row not sealed yet. */
  readonly sealedIn: number | null;
  /** statement_at in epoch milliseconds, parsed once. */
  readonly at: number;
}

export interface LedgerView {
  readonly statements: readonly KnownStatement[];
  /** False when the live ledger could not be read (no database, a recreated one, no ledger). */
  readonly live: boolean;
  readonly lastSeal: { readonly seq: number; readonly ts: string; readonly databaseOid: number } | null;
  /** Sealed copies left out: unreadable, or not the file their signed entry names ("… (ledger.seal #12)"). */
  readonly problems: readonly string[];
}

/** The `ledger.seal` entries, gathered during the command's one pass over the log (history/scan.ts visits it). */
export class SealCollector {
  readonly seals: SealRecord[] = [];
  add(record: AuditRecord): void {
    if (record.kind === 'ledger.seal') this.seals.push(record);
  }
}

/**
 * `seals`: every `ledger.seal` entry of the log (SealCollector). `about`: only what blame of
 * that table reads (its statements, and every DELETE and TRUNCATE for the cascades); without
 * it, every statement.
 */
export async function readLedgerView(
  db: Db | null,
  evidenceDir: string,
  database: { readonly key: string; readonly oid: number | null },
  seals: readonly SealRecord[],
  about?: TableName,
): Promise<LedgerView> {
  const mentions: Mention[] | undefined = about && [
    ['table_name', about.table],
    ['operation', 'DELETE'],
    ['operation', 'TRUNCATE'],
  ];
  const copies = await readCopiesOf(evidenceDir, seals, { key: database.key }, mentions);
  const wanted = (s: LedgerStatement): boolean =>
    !about || (s.table_schema === about.schema && s.table_name === about.table) || s.operation === 'DELETE' || s.operation === 'TRUNCATE';
  const byKey = new Map<string, KnownStatement>();
  // Times parsed once: a comparator that parses (or localeCompare) costs per comparison.
  const known = (statement: LedgerStatement, databaseOid: number, sealedIn: number | null): KnownStatement => ({
    statement,
    databaseOid,
    sealedIn,
    at: Date.parse(statement.statement_at),
  });
  for (const c of copies)
    for (const l of c.lines)
      if (wanted(l.statement)) byKey.set(`${c.body.databaseOid}:${l.statement.id}`, known(l.statement, c.body.databaseOid, c.seq));
  let live = false;
  if (db && database.oid !== null && (await ledgerInstalled(db))) {
    live = true;
    const rows = await db.transaction().execute((trx) => readStatements(trx, 'unsealed-visible', about));
    for (const s of rows) {
      const k = `${database.oid}:${s.id}`;
      if (!byKey.has(k)) byKey.set(k, known(s, database.oid, null));
    }
  }
  const last = copies[copies.length - 1];
  return {
    statements: [...byKey.values()].sort((a, b) => a.at - b.at || a.statement.id - b.statement.id),
    live,
    lastSeal: last ? { seq: last.seq, ts: last.ts, databaseOid: last.body.databaseOid } : null,
    problems: copies.flatMap((c) => (c.problem ? [`${c.problem} (ledger.seal #${c.seq})`] : [])),
  };
}
