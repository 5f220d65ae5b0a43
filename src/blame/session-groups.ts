import type { TableKey } from '../records/index.js';
import type { SessionStatement } from './attribute.js';
import { describeSession, describeWho, keptHint, NOT_KEPT, sessionDetails, sessionKey, statementText } from './sessions.js';

/**
 * One change can be explained by 10,000 statements (a loop of single-row UPDATEs). A terminal
 * and a report want who did what, not 30,000 lines: the statements of one session (role,
 * application, client, pid and backend start) and one operation are one group, with counts, the transactions
 * and the first and last statement. `blame --json` keeps every statement.
 */
export interface SessionGroup {
  readonly op: string;
  readonly statements: readonly SessionStatement[];
  readonly rows: number;
  readonly cascaded: number;
  /** Distinct transaction ids, in order of first appearance. */
  readonly xids: readonly string[];
}

/** Up to this many statements a change lists each one, as before. */
export const MAX_LISTED = 10;
/** Groups shown per change; groups that remove rows (DELETE, TRUNCATE, DROP) are picked first. */
export const MAX_GROUPS = 10;
const REMOVING = new Set(['DELETE', 'TRUNCATE', 'DROP']);
const STATEMENT_CHARS = 160;

/** Groups in order of their first statement (the statements come in time order). */
export function groupStatements(statements: readonly SessionStatement[]): SessionGroup[] {
  const groups = new Map<string, { op: string; statements: SessionStatement[]; xids: Set<string> }>();
  for (const s of statements) {
    // The pid alone is not the session: a later backend can get the same one (sessionKey).
    const key = JSON.stringify([s.role, s.outerRole, s.applicationName, s.clientAddr, sessionKey(s), s.op]);
    const g = groups.get(key) ?? { op: s.op, statements: [], xids: new Set<string>() };
    if (!g.statements.length) groups.set(key, g);
    g.statements.push(s);
    g.xids.add(s.xid);
  }
  return [...groups.values()].map((g) => ({
    op: g.op,
    statements: g.statements,
    rows: g.statements.reduce((n, s) => n + s.rows, 0),
    cascaded: g.statements.reduce((n, s) => n + s.cascaded, 0),
    xids: [...g.xids],
  }));
}

/** The groups a terminal shows (removals first, then in time order, at most MAX_GROUPS), and what the rest hold. */
export function shownGroups(groups: readonly SessionGroup[]): { shown: SessionGroup[]; hiddenGroups: number; hiddenStatements: number } {
  const removes = (g: SessionGroup): number => (REMOVING.has(g.op) ? 0 : 1);
  const picked = groups
    .map((g, i) => ({ g, i }))
    .sort((a, b) => removes(a.g) - removes(b.g) || a.i - b.i)
    .slice(0, MAX_GROUPS)
    .sort((a, b) => a.i - b.i)
    .map(({ g }) => g);
  const shownStatements = picked.reduce((n, g) => n + g.statements.length, 0);
  const allStatements = groups.reduce((n, g) => n + g.statements.length, 0);
  return { shown: picked, hiddenGroups: groups.length - picked.length, hiddenStatements: allStatements - shownStatements };
}

/** `10000 UPDATE statements, 10000 rows by role app, application "x", client local socket, pid 42, xid 7, from … to …` */
export function describeGroup(g: SessionGroup): string {
  if (g.statements.length === 1) return describeSession(g.statements[0]!);
  const first = g.statements[0]!;
  const last = g.statements[g.statements.length - 1]!;
  return [
    `${g.statements.length} ${g.op} statements, ${g.rows} rows${g.cascaded ? ` (+${g.cascaded} cascaded)` : ''} by ${describeWho(first)}`,
    describeXids(g.xids),
    `from ${first.at} to ${last.at}`,
  ].join(', ');
}

/** The first and last statement of the group, and where its rows are. */
export function groupDetails(g: SessionGroup, table: TableKey): string[] {
  if (g.statements.length === 1) return sessionDetails(g.statements[0]!);
  const first = g.statements[0]!;
  const last = g.statements[g.statements.length - 1]!;
  const kept = g.statements.filter((s) => s.rowsKept > 0);
  return [
    `first (ledger ${first.ledgerId}): ${shorten(statementText(first))}`,
    `last  (ledger ${last.ledgerId}): ${shorten(statementText(last))}`,
    keptLine(g, kept, table),
  ];
}

function keptLine(g: SessionGroup, kept: readonly SessionStatement[], table: TableKey): string {
  if (!kept.length) return NOT_KEPT;
  const of = `${kept.length} of ${g.statements.length} statements`;
  if (kept.length <= 5)
    return keptHint(
      g.op,
      kept.map((s) => s.ledgerId),
    );
  if (!REMOVING.has(g.op))
    return g.op === 'UPDATE'
      ? `old values kept for ${of}: safe-run recover --ledger ID for each (every ledger id: --json)`
      : `${g.op === 'INSERT' ? 'inserted rows' : 'rows'} kept for ${of} (every ledger id: --json)`;
  // The window's other removals of the table come back too: --dry-run says what recover would do.
  const first = kept[0]!.at;
  const last = kept[kept.length - 1]!.at;
  return `rows kept for ${of}: safe-run recover --table ${table} --since ${first} --until ${last} --dry-run`;
}

function describeXids(xids: readonly string[]): string {
  if (xids.length === 1) return `xid ${xids[0]}`;
  if (xids.length <= 3) return `xids ${xids.join(', ')}`;
  return `${xids.length} transactions (xids ${xids[0]} … ${xids[xids.length - 1]})`;
}

function shorten(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > STATEMENT_CHARS ? `${line.slice(0, STATEMENT_CHARS - 1)}…` : line;
}

/** One line per statement when there are few, per shown group when there are many: a report's table cell. */
export function summarizeStatements(statements: readonly SessionStatement[]): string[] {
  if (statements.length <= MAX_LISTED) return statements.map(describeSession);
  const { shown, hiddenGroups, hiddenStatements } = shownGroups(groupStatements(statements));
  return [
    ...shown.map(describeGroup),
    ...(hiddenGroups ? [`${hiddenGroups} more group(s) with ${hiddenStatements} statement(s) (blame --json lists each)`] : []),
  ];
}

/**
 * The statement a one-sentence verdict names: when the table lost rows, the removal that took
 * the most (one DELETE among 10,000 UPDATEs is the answer); otherwise the first.
 */
export function leadingStatement(statements: readonly SessionStatement[], lostRows: boolean): SessionStatement {
  const removals = lostRows ? statements.filter((s) => REMOVING.has(s.op)) : [];
  return removals.reduce((best, s) => (s.rows + s.cascaded > best.rows + best.cascaded ? s : best), removals[0] ?? statements[0]!);
}
