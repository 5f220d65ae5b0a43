import { keyOf } from '../db/names.js';
import type { KnownStatement, LedgerView } from '../ledger/read.js';
import type { TableKey } from '../records/index.js';
import { isOutside, type BlameChange, type LedgerOff, type SessionStatement } from './attribute.js';
import type { RunFacts } from './windows.js';

/**
 * A change no run's own transaction explains, on a protected table, is given to the
 * sessions the change ledger names: the statements on that table inside the window, minus
 * the guarded runs' own (their xid is in the signed outcome). Without such statements the
 * change stays `outside`/`concurrent`; after the last seal of a ledger that is gone, that
 * is said too, since those statements were lost with the database.
 */
const CHANGING = new Set(['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'DROP', 'RENAME']);

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
  const offs = ledgerOffSpans(table, view.statements);
  return changes.map((change) => {
    if (!isOutside(change.attribution)) return change;
    const from = Date.parse(change.fromTs);
    const to = Date.parse(change.toTs);
    // The ledger's silence while it was off clears nobody: the change says so, whoever else it names.
    const off = offs.filter((o) => o.from <= to && (o.to === null || o.to >= from));
    const c: BlameChange = off.length
      ? {
          ...change,
          ledgerOff: off.map((o) => ({
            off: toSessionStatement(o.off, cascaded),
            on: o.on && toSessionStatement(o.on, cascaded),
            meanwhile: removalsElsewhere(table, view.statements, Math.max(o.from, from), Math.min(o.to ?? to, to), runXids).map((k) => ({
              table: keyOf(k.statement.table_schema!, k.statement.table_name!),
              statement: toSessionStatement(k, cascaded),
            })),
          })),
        }
      : change;
    if (!isOutside(c.attribution)) return c;
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

interface OffSpan {
  readonly off: KnownStatement;
  readonly on: KnownStatement | null;
  readonly from: number;
  readonly to: number | null;
}

/**
 * When the table's ledger triggers were off (LEDGER OFF to the next LEDGER ON, or still).
 * Off and on again in one transaction counts too: that transaction's own writes in between
 * were not recorded (`protect` replaces its triggers without switching them off).
 */
function ledgerOffSpans(table: TableKey, statements: readonly KnownStatement[]): OffSpan[] {
  const spans: OffSpan[] = [];
  let open: KnownStatement | null = null;
  for (const k of statements) {
    const s = k.statement;
    if (s.table_schema === null || s.table_name === null || keyOf(s.table_schema, s.table_name) !== table) continue;
    if (s.operation === 'LEDGER OFF' && !open) open = k;
    else if (s.operation === 'LEDGER ON' && open) {
      spans.push({ off: open, on: k, from: open.at, to: k.at });
      open = null;
    }
  }
  if (open) spans.push({ off: open, on: null, from: open.at, to: null });
  return spans;
}

/** What a table's cascade looks like from its children: at most this many removals elsewhere are named per span. */
const MAX_MEANWHILE = 5;

/**
 * Rows removed from other protected tables while this one's ledger was off: a delete from this
 * table that cascaded shows there, with its session, xid and statement. Named, never taken for proof.
 */
function removalsElsewhere(
  table: TableKey,
  statements: readonly KnownStatement[],
  from: number,
  to: number,
  runXids: ReadonlySet<string>,
): KnownStatement[] {
  return statements
    .filter(({ statement: s, at }) => {
      if (s.table_schema === null || s.table_name === null || runXids.has(s.xid)) return false;
      return (
        at >= from && at <= to && (s.operation === 'DELETE' || s.operation === 'TRUNCATE') && keyOf(s.table_schema, s.table_name) !== table
      );
    })
    .slice(0, MAX_MEANWHILE);
}

/**
 * Under a change: that the ledger was off, and who switched it off and on again (one line each):
 * `the change ledger was OFF on public.users: …`, `off: 2025-… by role app, …, xid 12: ALTER TABLE …`.
 */
export function ledgerOffLines(table: TableKey, o: LedgerOff): string[] {
  const who = (s: SessionStatement): string => `${s.at} by ${describeWho(s)}, xid ${s.xid}: ${shortStatement(statementText(s))}`;
  const same = o.on && o.on.xid === o.off.xid ? ' (the same transaction: its writes in between were not recorded)' : '';
  return [
    `the change ledger was OFF on ${table}: writes then were not recorded, so the statements named may not explain this change`,
    `off: ${who(o.off)}`,
    o.on ? `on:  ${who(o.on)}${same}` : 'on:  not since (safe-run doctor shows the triggers; safe-run protect puts them back)',
    ...o.meanwhile.map(
      (m) =>
        `meanwhile (a cascade from here shows there): ${m.statement.op} ${m.statement.rows} rows from ${m.table} at ${who(m.statement)}`,
    ),
  ];
}

function shortStatement(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > 160 ? `${line.slice(0, 159)}…` : line;
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
  // A RENAME moves the rows without counting them.
  const rows = s.op === 'RENAME' ? '' : ` ${s.rows} rows${s.cascaded ? ` (+${s.cascaded} cascaded)` : ''}`;
  return `${s.op}${rows} by ${describeWho(s)}, xid ${s.xid}, at ${s.at}`;
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
  if (s.op === 'RENAME') return [statementText(s), 'the rows went with the renamed table (the statement says where); nothing was deleted'];
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
