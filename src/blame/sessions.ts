import { keyOf } from '../db/names.js';
import type { KnownStatement, LedgerView } from '../ledger/read.js';
import type { TableKey } from '../records/index.js';
import { isOutside, type BlameChange, type SessionStatement } from './attribute.js';
import type { RunFacts } from './windows.js';

/**
 * A change no run's own transaction explains, on a protected table, is given to the
 * sessions the change ledger names: the statements on that table inside the window, minus
 * the guarded runs' own (their xid is in the signed outcome). Without such statements the
 * change stays `outside`/`concurrent`; after the last seal of a ledger that is gone, that
 * is said too, since those statements were lost with the database.
 */
const CHANGING = new Set(['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'DROP']);

export function attributeToSessions(
  table: TableKey,
  changes: readonly BlameChange[],
  view: LedgerView,
  runs: readonly RunFacts[],
): BlameChange[] {
  if (!view.statements.length && !view.lastSeal) return [...changes];
  const runXids = new Set(runs.flatMap((r) => (r.run.outcome?.xid ? [r.run.outcome.xid] : [])));
  const onTable = view.statements.filter(
    ({ statement: s }) =>
      s.table_schema !== null &&
      s.table_name !== null &&
      keyOf(s.table_schema, s.table_name) === table &&
      CHANGING.has(s.operation) &&
      !runXids.has(s.xid),
  );
  const cascaded = cascadedByXid(view.statements);
  return changes.map((c) => {
    if (!isOutside(c.attribution)) return c;
    const from = Date.parse(c.fromTs);
    const to = Date.parse(c.toTs);
    // onTable is in time order (readLedgerView): a window is one slice, found in log time.
    const inWindow = onTable.slice(firstAfter(onTable, from), firstAfter(onTable, to));
    if (inWindow.length) {
      const during = c.attribution.type === 'concurrent' ? { runId: c.attribution.runId, script: c.attribution.script } : {};
      return {
        ...c,
        attribution: {
          type: 'session',
          statements: markReusedPids(inWindow.map((k) => toSessionStatement(k, cascaded))),
          after: c.attribution.after,
          before: c.attribution.before,
          ...during,
        },
      };
    }
    if (!view.live && view.lastSeal && to > Date.parse(view.lastSeal.ts))
      return {
        ...c,
        ledgerLost: `the ledger went with the database: statements after its last seal (#${view.lastSeal.seq}, ${view.lastSeal.ts}) are lost`,
      };
    return c;
  });
}

/** The index of the first statement later than `t` (statements.length when none is). */
function firstAfter(statements: readonly { readonly at: number }[], t: number): number {
  let lo = 0;
  let hi = statements.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (statements[mid]!.at > t) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** Rows each transaction deleted, by table: what a DELETE took along on the other protected tables. */
function cascadedByXid(statements: readonly KnownStatement[]): Map<string, KnownStatement[]> {
  const by = new Map<string, KnownStatement[]>();
  for (const k of statements) {
    if (k.statement.operation !== 'DELETE' && k.statement.operation !== 'TRUNCATE') continue;
    const key = `${k.databaseOid}:${k.statement.xid}`;
    const list = by.get(key);
    if (list) list.push(k);
    else by.set(key, [k]);
  }
  return by;
}

function toSessionStatement(k: KnownStatement, cascaded: ReadonlyMap<string, KnownStatement[]>): SessionStatement {
  const s = k.statement;
  return {
    ledgerId: s.id,
    xid: s.xid,
    pid: s.backend_pid,
    backendStart: s.backend_start === null ? null : new Date(s.backend_start).toISOString(),
    role: s.session_role,
    outerRole: s.outer_role,
    applicationName: s.application_name,
    clientAddr: s.client_addr,
    at: new Date(k.at).toISOString(),
    op: s.operation,
    rows: s.row_count,
    cascaded: s.operation === 'DELETE' || s.operation === 'TRUNCATE' ? cascadedRows(k, cascaded) : 0,
    rowsKept: s.rows_kept,
    statement: s.statement,
    fingerprint: s.statement_fingerprint,
  };
}

/** A session is its pid and its backend's start: two backends that got the same pid are two sessions, named apart. */
export function sessionKey(s: Pick<SessionStatement, 'pid' | 'backendStart'>): string {
  return `${s.pid}@${s.backendStart ?? '?'}`;
}

function markReusedPids(statements: SessionStatement[]): SessionStatement[] {
  const sessionsOf = new Map<number, Set<string>>();
  for (const s of statements) (sessionsOf.get(s.pid) ?? sessionsOf.set(s.pid, new Set()).get(s.pid)!).add(sessionKey(s));
  if ([...sessionsOf.values()].every((keys) => keys.size === 1)) return statements;
  return statements.map((s) => (sessionsOf.get(s.pid)!.size > 1 ? { ...s, pidReused: true } : s));
}

function cascadedRows(k: KnownStatement, cascaded: ReadonlyMap<string, KnownStatement[]>): number {
  const s = k.statement;
  const others = (cascaded.get(`${k.databaseOid}:${s.xid}`) ?? []).filter(
    ({ statement: o }) => o.id !== s.id && (o.table_schema !== s.table_schema || o.table_name !== s.table_name),
  );
  return others.reduce((n, o) => n + o.statement.row_count, 0);
}

/** `DELETE 8 rows (+16 cascaded) by role app, application "prisma-seed", client 10.0.0.5, pid 4242, xid 1234, at …` */
export function describeSession(s: SessionStatement): string {
  return `${s.op} ${s.rows} rows${s.cascaded ? ` (+${s.cascaded} cascaded)` : ''} by ${describeWho(s)}, xid ${s.xid}, at ${s.at}`;
}

/** The session: `role app, application "prisma-seed", client 10.0.0.5, pid 4242`. */
export function describeWho(s: SessionStatement): string {
  const role = s.outerRole && s.outerRole !== s.role ? `${s.role} (as ${s.outerRole})` : s.role;
  return [
    `role ${role}`,
    `application ${s.applicationName ? `"${s.applicationName}"` : '(none)'}`,
    `client ${s.clientAddr ?? 'local socket'}`,
    s.pidReused ? `pid ${s.pid} (its session started ${s.backendStart ?? 'at an unrecorded time'})` : `pid ${s.pid}`,
  ].join(', ');
}

export function statementText(s: SessionStatement): string {
  return s.statement ?? `(statement text not kept; fingerprint ${s.fingerprint ?? '?'})`;
}

/** The statement and where its rows are, under describeSession's line. */
export function sessionDetails(s: SessionStatement): string[] {
  return [statementText(s), s.rowsKept ? keptHint(s.op, [s.ledgerId]) : NOT_KEPT];
}

export const NOT_KEPT = 'rows not kept (protect with --keep-rows to keep them)';

/**
 * What helps with the rows these statements (one operation) kept: recover puts back removed
 * rows and an UPDATE's old values; an INSERT removed none, so recover has nothing to give and
 * the line says where its rows are instead.
 */
export function keptHint(op: string, ledgerIds: readonly number[]): string {
  const ids = ledgerIds.map((id) => `--ledger ${id}`).join(' ');
  if (op === 'UPDATE') return `old values kept: safe-run recover ${ids} (sets back the rows still as the UPDATE left them)`;
  if (op === 'INSERT')
    return `inserted rows kept (ledger ${ledgerIds.join(', ')}); nothing to recover, an INSERT removed no row: to delete them, docs/ledger.md "Rows an INSERT added"`;
  return `rows kept: safe-run recover ${ids}`;
}
