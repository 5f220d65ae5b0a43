import { readEntries, type OnSkipped } from '../audit/read.js';
import type { Db } from '../db/connection.js';
import type { DatabaseIdentity, DriftFinding, LedgerSealBody, TableKey } from '../records/index.js';
import { inlineRowsColumns } from './kept-rows.js';
import { readKeptHashes, readStatements, statementHash, type SealedLine } from './seal.js';
import { parseTableName } from '../db/names.js';
import { sql } from 'kysely';
import { ledgerInstalled, readLedgerState } from './state.js';
import { readSealedCopy, type Mention } from './sealed-copy.js';

/**
 * What `check` (exit 10) and `verify --db` (exit 5) say about the ledger: sealed rows that
 * are gone or changed (`ledger-tampered`), and protection that no longer records
 * (`ledger-trigger-disabled`).
 */
export interface SealedCopy {
  readonly seq: number;
  readonly ts: string;
  readonly body: LedgerSealBody;
  readonly lines: readonly SealedLine[];
  /** Null when the copy is intact. */
  readonly problem: string | null;
}

/** A `ledger.seal` entry as the log holds it. */
export interface SealRecord {
  readonly seq: number;
  readonly ts: string;
  readonly body: LedgerSealBody;
}

/** Every `ledger.seal` entry of the log (for a command that does not read the log otherwise). */
export async function readSeals(evidenceDir: string, onSkipped: OnSkipped): Promise<SealRecord[]> {
  const seals: SealRecord[] = [];
  for await (const record of readEntries(evidenceDir, onSkipped)) {
    if (record.kind === 'ledger.seal') seals.push({ seq: record.seq, ts: record.ts, body: record.body });
  }
  return seals;
}

/**
 * The copies of those seals that are of this database (same key, and oid when given), for a
 * command that has read the log already; with `mentions`, only the copies' lines that hold
 * one of them (see sealed-copy.ts).
 */
export async function readCopiesOf(
  evidenceDir: string,
  seals: readonly SealRecord[],
  database: Pick<DatabaseIdentity, 'key'> & { readonly oid?: number },
  mentions?: readonly Mention[],
): Promise<SealedCopy[]> {
  const copies: SealedCopy[] = [];
  for (const seal of seals) {
    if (seal.body.database !== database.key) continue;
    if (database.oid !== undefined && seal.body.databaseOid !== database.oid) continue;
    copies.push({ seq: seal.seq, ts: seal.ts, body: seal.body, ...(await readSealedCopy(evidenceDir, seal.body, mentions)) });
  }
  return copies;
}

/** A sealed statement gone or changed, or a sealed copy that no longer matches its entry; `seq` names the seal. */
export interface LedgerTamper {
  readonly seq: number;
  readonly detail: string;
}

export async function ledgerTamperFindings(
  db: Db,
  evidenceDir: string,
  identity: DatabaseIdentity,
  seals: readonly SealRecord[],
): Promise<DriftFinding[]> {
  return (await findLedgerTampering(db, evidenceDir, identity, seals)).map((t) => ({ kind: 'ledger-tampered', detail: t.detail }));
}

/** The seals of this database (same key and oid) against their copies and the live ledger. */
export async function findLedgerTampering(
  db: Db,
  evidenceDir: string,
  identity: DatabaseIdentity,
  seals: readonly SealRecord[],
): Promise<LedgerTamper[]> {
  const copies = await readCopiesOf(evidenceDir, seals, identity);
  if (!copies.length) return [];
  const found: LedgerTamper[] = copies.flatMap((c) => (c.problem ? [{ seq: c.seq, detail: `${c.problem} (ledger.seal #${c.seq})` }] : []));
  const sealed = new Map<number, { hash: string; seq: number }>();
  for (const c of copies) for (const id of c.body.ids) sealed.set(id, { hash: '', seq: c.seq });
  for (const c of copies) for (const l of c.lines) sealed.set(l.statement.id, { hash: l.hash, seq: c.seq });
  if (!(await ledgerInstalled(db))) {
    const last = copies[copies.length - 1]!.seq;
    return [
      ...found,
      {
        seq: last,
        detail: `safe_run.ledger is gone, with ${sealed.size} sealed statement(s) (last seal #${last}); the sealed copies in ${evidenceDir}/ledger still answer \`safe-run blame\``,
      },
    ];
  }
  const live = new Map((await db.transaction().execute((trx) => readStatements(trx, 'sealed'))).map((s) => [s.id, statementHash(s)]));
  const missing: number[] = [];
  const changed: number[] = [];
  let seq = Number.POSITIVE_INFINITY;
  for (const [id, s] of sealed) {
    const hash = live.get(id);
    if (hash === undefined) missing.push(id);
    else if (s.hash && hash !== s.hash) changed.push(id);
    else continue;
    seq = Math.min(seq, s.seq);
  }
  if (missing.length)
    found.push({
      seq,
      detail: `${missing.length} sealed ledger statement(s) deleted from safe_run.ledger (ids ${few(missing)}); the sealed copies keep them`,
    });
  if (changed.length)
    found.push({
      seq,
      detail: `${changed.length} sealed ledger statement(s) edited in safe_run.ledger (ids ${few(changed)}); the sealed copies hold the originals`,
    });
  const rows = await keptRowsTampering(db, copies, live);
  return rows ? [...found, rows] : found;
}

const few = (ids: readonly number[]): string => ids.slice(0, 10).join(', ') + (ids.length > 10 ? ', …' : '');

/**
 * The kept rows of the sealed statements still in the ledger (`live`), against the hash each
 * sealed line holds: one query, hashed by the server, one row back per statement that kept
 * rows. Seals older than the hash hold only the count, so for them a row deleted or added is
 * found, an edited one is not. A statement deleted outright is the finding above already.
 */
async function keptRowsTampering(db: Db, copies: readonly SealedCopy[], live: ReadonlyMap<number, string>): Promise<LedgerTamper | null> {
  const now = await readKeptHashes(db, sql`l.sealed_in is not null`, await inlineRowsColumns(db));
  const changed: number[] = [];
  let seq = Number.POSITIVE_INFINITY;
  for (const c of copies)
    for (const l of c.lines) {
      const id = l.statement.id;
      if (!live.has(id)) continue;
      const kept = now.get(id);
      const same = l.keptHash === undefined ? (kept?.n ?? 0) === l.kept : (kept?.hash ?? null) === l.keptHash;
      if (same) continue;
      changed.push(id);
      seq = Math.min(seq, c.seq);
    }
  if (!changed.length) return null;
  return {
    seq,
    detail:
      `the kept rows of ${changed.length} sealed ledger statement(s) were edited or deleted in the database (ids ${few(changed)}); ` +
      '`safe-run recover` and `undo` put back the sealed rows, which the evidence directory keeps',
  };
}

/** Protection that does not record: a disabled or missing trigger, a critical table left out once the ledger exists. */
export async function ledgerTriggerFindings(db: Db, criticalTables: readonly TableKey[]): Promise<DriftFinding[]> {
  const state = await readLedgerState(db);
  if (!state.installed) return [];
  const findings: DriftFinding[] = state.eventProblems.map((p) => ({
    kind: 'ledger-trigger-disabled' as const,
    detail: `${p}: DDL and drops are not recorded. Run \`safe-run protect\` again`,
  }));
  for (const t of state.tables) {
    if (!t.exists) continue;
    for (const p of t.problems)
      findings.push({
        kind: 'ledger-trigger-disabled',
        table: t.key,
        detail: `${p}: writes to it are not recorded. Run \`safe-run protect ${t.key}\` again`,
      });
  }
  const protectedKeys = new Set(state.tables.filter((t) => t.exists).map((t) => t.key));
  for (const key of criticalTables)
    if (!protectedKeys.has(key) && (await tableExists(db, key)))
      findings.push({
        kind: 'ledger-trigger-disabled',
        table: key,
        detail: `critical table ${key} has no ledger triggers (recreated, or never protected). Run \`safe-run protect ${key} --keep-rows\``,
      });
  return findings;
}

async function tableExists(db: Db, key: TableKey): Promise<boolean> {
  const { schema, table } = parseTableName(key);
  const { rows } = await sql<{ ok: boolean }>`
    select pg_catalog.to_regclass(pg_catalog.format('%I.%I', ${schema}::text, ${table}::text)) is not null as ok`.execute(db);
  return rows[0]!.ok;
}
