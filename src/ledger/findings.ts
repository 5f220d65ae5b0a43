import { readEntries, type OnSkipped } from '../audit/read.js';
import type { Db } from '../db/connection.js';
import type { DatabaseIdentity, DriftFinding, LedgerSealBody, TableKey } from '../records/index.js';
import { inlineRowsColumns } from './kept-rows.js';
import { readKeptHashes, readStatements, statementHash, type SealedLine } from './seal.js';
import { parseTableName } from '../db/names.js';
import { sql } from 'kysely';
import { ledgerInstalled, readLedgerState } from './state.js';
import { readSealedCopy, type Mention } from './sealed-copy.js';
import { sealStamps } from './verified.js';

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

/** Seal seq to its stamp (verified.ts): the seals compared and found intact, which the next check may skip while their stamp holds. */
export type IntactSeals = ReadonlyMap<number, string>;

export interface TamperCheck {
  readonly tampering: readonly LedgerTamper[];
  readonly intact: IntactSeals;
}

/** For `verify --db`: every seal compared. */
export async function findLedgerTampering(
  db: Db,
  evidenceDir: string,
  identity: DatabaseIdentity,
  seals: readonly SealRecord[],
): Promise<readonly LedgerTamper[]> {
  return (await checkLedgerSeals(db, evidenceDir, identity, seals, new Map())).tampering;
}

/**
 * The seals of this database (same key and oid) against their copies and the live ledger.
 * A seal whose stamp is the one in `known` (found intact before, and neither its live rows
 * nor its copies written since) is not read again: check costs what was sealed or touched
 * since the last check, not the whole ledger.
 */
export async function checkLedgerSeals(
  db: Db,
  evidenceDir: string,
  identity: DatabaseIdentity,
  seals: readonly SealRecord[],
  known: IntactSeals,
): Promise<TamperCheck> {
  const mine = seals.filter((s) => s.body.database === identity.key && s.body.databaseOid === identity.oid);
  if (!mine.length) return { tampering: [], intact: new Map() };
  if (!(await ledgerInstalled(db))) return { tampering: [await ledgerGone(evidenceDir, mine)], intact: new Map() };
  const stamps = await sealStamps(db, evidenceDir, mine);
  const intact = new Map<number, string>();
  const toCompare: SealRecord[] = [];
  for (const seal of mine) {
    const stamp = stamps.get(seal.seq)!;
    if (known.get(seal.seq) === stamp) intact.set(seal.seq, stamp);
    else toCompare.push(seal);
  }
  const tampering = await compareSeals(db, await readCopiesOf(evidenceDir, toCompare, identity));
  const tainted = new Set(tampering.flatMap((t) => t.seqs));
  for (const seal of toCompare) if (!tainted.has(seal.seq)) intact.set(seal.seq, stamps.get(seal.seq)!);
  return { tampering: tampering.map(({ seq, detail }) => ({ seq, detail })), intact };
}

async function ledgerGone(evidenceDir: string, seals: readonly SealRecord[]): Promise<LedgerTamper> {
  const statements = new Set(seals.flatMap((s) => s.body.ids)).size;
  const last = seals[seals.length - 1]!.seq;
  return {
    seq: last,
    detail: `safe_run.ledger is gone, with ${statements} sealed statement(s) (last seal #${last}); the sealed copies in ${evidenceDir}/ledger still answer \`safe-run blame\``,
  };
}

/** A problem and every seal it is about (the first names it). */
type Problem = LedgerTamper & { readonly seqs: readonly number[] };

async function compareSeals(db: Db, copies: readonly SealedCopy[]): Promise<Problem[]> {
  if (!copies.length) return [];
  const found: Problem[] = copies.flatMap((c) =>
    c.problem ? [{ seq: c.seq, seqs: [c.seq], detail: `${c.problem} (ledger.seal #${c.seq})` }] : [],
  );
  const sealed = new Map<number, { hash: string; seq: number }>();
  for (const c of copies) for (const id of c.body.ids) sealed.set(id, { hash: '', seq: c.seq });
  for (const c of copies) for (const l of c.lines) sealed.set(l.statement.id, { hash: l.hash, seq: c.seq });
  const ids = [...sealed.keys()];
  const live = new Map((await db.transaction().execute((trx) => readStatements(trx, { ids }))).map((s) => [s.id, statementHash(s)]));
  const missing: number[] = [];
  const changed: number[] = [];
  const seqs = new Set<number>();
  for (const [id, s] of sealed) {
    const hash = live.get(id);
    if (hash === undefined) missing.push(id);
    else if (s.hash && hash !== s.hash) changed.push(id);
    else continue;
    seqs.add(s.seq);
  }
  const seq = Math.min(...seqs);
  if (missing.length)
    found.push({
      seq,
      seqs: [...seqs],
      detail: `${missing.length} sealed ledger statement(s) deleted from safe_run.ledger (ids ${few(missing)}); the sealed copies keep them`,
    });
  if (changed.length)
    found.push({
      seq,
      seqs: [...seqs],
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
async function keptRowsTampering(db: Db, copies: readonly SealedCopy[], live: ReadonlyMap<number, string>): Promise<Problem | null> {
  const now = await readKeptHashes(db, sql`l.id = any (${[...live.keys()]}::int8[])`, await inlineRowsColumns(db));
  const changed: number[] = [];
  const seqs = new Set<number>();
  for (const c of copies)
    for (const l of c.lines) {
      const id = l.statement.id;
      if (!live.has(id)) continue;
      const kept = now.get(id);
      const same = l.keptHash === undefined ? (kept?.n ?? 0) === l.kept : (kept?.hash ?? null) === l.keptHash;
      if (same) continue;
      changed.push(id);
      seqs.add(c.seq);
    }
  if (!changed.length) return null;
  return {
    seq: Math.min(...seqs),
    seqs: [...seqs],
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
    detail: `${p}. Run \`safe-run protect\` again`,
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
