import { SafeRunError, errorMessage } from '../errors.js';
import { parsePlpgsqlFunctions, PgParseError, scanTokens, type PgNode } from './pg-parser.js';
import { GUARDED_SETTINGS, isGuardedSetting, refusedFunction, type PolicyRule } from './policy-rules.js';
import { splitLoaded } from './statement-split.js';

/** One thing found in a statement: the rule it breaks and how to name it to an operator. */
export interface Finding {
  readonly rule: PolicyRule;
  /** e.g. `COMMIT`, `SET LOCAL statement_timeout`, `dblink_exec(...) in the body of DO`. */
  readonly what: string;
}

type Report = (rule: PolicyRule, what: string) => void;
type Fields = Readonly<Record<string, unknown>>;

/** Bodies inside bodies (a DO that runs a DO...) are read this deep, and refused beyond. */
const MAX_DEPTH = 16;

const TRANSACTION_KINDS: Readonly<Record<string, string>> = {
  TRANS_STMT_BEGIN: 'BEGIN',
  TRANS_STMT_START: 'START TRANSACTION',
  TRANS_STMT_COMMIT: 'COMMIT',
  TRANS_STMT_ROLLBACK: 'ROLLBACK',
  TRANS_STMT_PREPARE: 'PREPARE TRANSACTION',
  TRANS_STMT_COMMIT_PREPARED: 'COMMIT PREPARED',
  TRANS_STMT_ROLLBACK_PREPARED: 'ROLLBACK PREPARED',
  // SAVEPOINT, RELEASE and ROLLBACK TO SAVEPOINT stay inside the run's transaction: allowed.
};

/**
 * Everything a statement's whole parse tree does that the policy refuses. The walk visits every
 * node, so EXPLAIN ANALYZE, PREPARE, CTEs, sub-selects, rule actions, function SET clauses,
 * `ALTER ROLE ... SET` and BEGIN ATOMIC bodies are all seen; DO and function bodies written as
 * strings are parsed and walked with the same rules.
 */
export function findingsIn(node: PgNode, statementText: string, depth = 0): readonly Finding[] {
  const findings: Finding[] = [];
  walk(node, statementText, depth, '', (rule, what) => findings.push({ rule, what }));
  return findings;
}

function walk(value: unknown, text: string, depth: number, where: string, report: Report): void {
  if (Array.isArray(value)) {
    for (const item of value) walk(item, text, depth, where, report);
    return;
  }
  if (value === null || typeof value !== 'object') return;
  // for...in, not Object.entries: a statement with thousands of parameters ($1, $2, ...) is
  // thousands of nodes, and the gate walks every statement a script sends.
  const node = value as Fields;
  for (const key in node) {
    const fields = node[key];
    if (fields === null || typeof fields !== 'object') continue;
    if (!Array.isArray(fields)) checkNode(key, fields as Fields, text, depth, where, report);
    walk(fields, text, depth, where, report);
  }
}

function checkNode(type: string, f: Fields, text: string, depth: number, where: string, report: Report): void {
  switch (type) {
    case 'TransactionStmt': {
      const name = TRANSACTION_KINDS[String(f.kind)];
      if (name) report('transaction-control', at(where, f.chain ? `${name} AND CHAIN` : name));
      return;
    }
    // libpg_query writes a field typed as one node kind without the wrapper: ALTER ROLE/DATABASE
    // ... SET keep their VariableSetStmt in `setstmt`, CALL its FuncCall in `funccall`.
    case 'VariableSetStmt':
    case 'setstmt':
      return checkSet(f, (rule, what) => report(rule, at(where, what)));
    case 'FuncCall':
    case 'funccall':
      return checkCall(f, (rule, what) => report(rule, at(where, what)));
    case 'RangeVar':
    case 'relation':
      if (String(f.schemaname ?? '').toLowerCase() === 'safe_run')
        report('evidence-schema', at(where, `safe_run.${String(f.relname ?? '')}`));
      return;
    case 'CopyStmt':
      if (f.is_program) report('server-files', at(where, 'COPY ... PROGRAM'));
      else if (typeof f.filename === 'string') report('server-files', at(where, `COPY ... ${f.is_from ? 'FROM' : 'TO'} a server file`));
      return;
    case 'AlterSystemStmt':
      return report('server-config', at(where, 'ALTER SYSTEM'));
    case 'LoadStmt':
      return report('server-config', at(where, 'LOAD'));
    case 'DoStmt':
    case 'CreateFunctionStmt':
      return checkBody(type, f, text, depth, report);
    case 'PLpgSQL_stmt_commit':
      return report('transaction-control', at(where, 'COMMIT'));
    case 'PLpgSQL_stmt_rollback':
      return report('transaction-control', at(where, 'ROLLBACK'));
    case 'PLpgSQL_expr':
      return checkEmbedded(embeddedSql(f), depth, where, report);
    case 'PLpgSQL_stmt_dynexecute':
    case 'PLpgSQL_stmt_dynfors':
    case 'PLpgSQL_stmt_open':
      // EXECUTE of a literal string is read like any statement. A string computed at run time
      // cannot be checked, so it is allowed: the runner's end-of-script checks (settings, role,
      // measured changes) still see whatever it leaves behind.
      return checkLiteralExecute(f.query ?? f.dynquery, depth, where, report);
    default:
      return;
  }
}

const at = (where: string, what: string): string => `${what}${where}`;

function checkSet(f: Fields, report: Report): void {
  const name = String(f.name ?? '').toLowerCase();
  const verb = String(f.kind).startsWith('VAR_RESET') ? 'RESET' : f.is_local ? 'SET LOCAL' : 'SET';
  if (f.kind === 'VAR_RESET_ALL') return report('guarded-setting', 'RESET ALL');
  if (name === 'role') return report('role-change', `${verb} ROLE`);
  if (name === 'session_authorization') return report('role-change', `${verb} SESSION AUTHORIZATION`);
  if (name === 'transaction' || name === 'session characteristics') {
    // SET TRANSACTION READ ONLY / SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY
    for (const option of (f.args as { DefElem?: { defname?: string } }[] | undefined) ?? []) {
      const setting = option.DefElem?.defname;
      if (setting && isGuardedSetting(setting)) report('guarded-setting', `SET ${name.toUpperCase()} (${setting})`);
    }
    return;
  }
  if (isGuardedSetting(name)) report('guarded-setting', `${verb} ${name}`);
}

function checkCall(f: Fields, report: Report): void {
  const parts = (f.funcname as { String?: { sval?: string } }[] | undefined) ?? [];
  // Matched by the bare name in any schema: an extension such as dblink installs wherever it is told.
  const name = (parts[parts.length - 1]?.String?.sval ?? '').toLowerCase();
  if (name === 'set_config') {
    const setting = literalString((f.args as unknown[] | undefined)?.[0]);
    if (setting === undefined) report('set-config', 'set_config(...) with a computed setting name');
    else if (isGuardedSetting(setting) || GUARDED_SETTINGS.includes(setting.trim().toLowerCase())) {
      report('set-config', `set_config('${setting}', ...)`);
    }
    return;
  }
  const rule = refusedFunction(name);
  if (rule) report(rule, `${name}(...)`);
}

/** The value of a string literal, through casts (`'role'::text`); undefined for anything computed. */
function literalString(node: unknown): string | undefined {
  const n = node as { A_Const?: { sval?: { sval?: string } }; TypeCast?: { arg?: unknown } } | undefined;
  if (n?.A_Const) return n.A_Const.sval ? (n.A_Const.sval.sval ?? '') : undefined;
  if (n?.TypeCast) return literalString(n.TypeCast.arg);
  return undefined;
}

function checkBody(type: string, f: Fields, text: string, depth: number, report: Report): void {
  const options = ((type === 'DoStmt' ? f.args : f.options) as { DefElem?: { defname?: string; arg?: unknown } }[] | undefined) ?? [];
  const option = (name: string): unknown => options.find((o) => o.DefElem?.defname === name)?.DefElem?.arg;
  const body = type === 'DoStmt' ? stringOf(option('as')) : stringOf((option('as') as { List?: { items?: unknown[] } })?.List?.items?.[0]);
  if (body === undefined) return; // BEGIN ATOMIC: its statements are in the tree and already walked
  const language = (stringOf(option('language')) ?? (type === 'DoStmt' ? 'plpgsql' : 'sql')).toLowerCase();
  const where = ` in the body of ${type === 'DoStmt' ? 'DO' : 'CREATE FUNCTION'}`;
  if (depth >= MAX_DEPTH) return report('unchecked-body', `a body nested more than ${MAX_DEPTH} deep${where}`);
  if (language === 'sql') return checkEmbedded(body, depth, where, report);
  if (language !== 'plpgsql') return report('unchecked-body', `a body in LANGUAGE ${language}${where}`);
  let functions;
  try {
    // The whole statement, not the body alone: parameters, RETURNS SETOF and trigger variables matter.
    functions = parsePlpgsqlFunctions(text);
  } catch (error) {
    return report('unchecked-body', `a PL/pgSQL body PostgreSQL 17 cannot read (${errorMessage(error)})${where}`);
  }
  walk(functions, text, depth + 1, where, report);
}

const stringOf = (node: unknown): string | undefined => (node as { String?: { sval?: string } } | undefined)?.String?.sval;

/** SQL text a statement of a body runs, and the body's place for messages. */
function checkEmbedded(sql: string | undefined, depth: number, where: string, report: Report): void {
  if (sql === undefined) return;
  try {
    for (const statement of splitLoaded(sql, 'body')) {
      for (const finding of findingsIn(statement.node, statement.text, depth + 1)) {
        report(finding.rule, finding.what.endsWith(where) ? finding.what : `${finding.what}${where}`);
      }
    }
  } catch (error) {
    if (!(error instanceof SafeRunError || error instanceof PgParseError)) throw error;
    report('unchecked-body', `a statement PostgreSQL 17 cannot read (${sql.trim().slice(0, 60)})${where}`);
  }
}

/**
 * PL/pgSQL hands its SQL to the main grammar in modes: 0 is a whole statement, 2 an expression,
 * 3 to 5 an assignment `target := expression`. Expressions are read as `SELECT <expression>`.
 */
function embeddedSql(f: Fields): string | undefined {
  const query = typeof f.query === 'string' ? f.query : undefined;
  if (query === undefined || f.parseMode === 0 || f.parseMode === undefined) return query;
  if (f.parseMode === 2) return `SELECT ${query}`;
  const tokens = scanTokens(query);
  const assign = tokens.find((t) => t.text === ':=') ?? tokens.find((t) => t.text === '=');
  return assign ? `SELECT ${Buffer.from(query).subarray(assign.end).toString()}` : `SELECT ${query}`;
}

function checkLiteralExecute(query: unknown, depth: number, where: string, report: Report): void {
  const expression = (query as { PLpgSQL_expr?: { query?: string } } | undefined)?.PLpgSQL_expr?.query;
  if (expression === undefined) return;
  try {
    const [statement] = splitLoaded(`SELECT ${expression}`, 'EXECUTE');
    const target = (statement?.node.SelectStmt as { targetList?: { ResTarget?: { val?: unknown } }[] } | undefined)?.targetList;
    const literal = target?.length === 1 ? literalString(target[0]?.ResTarget?.val) : undefined;
    if (literal !== undefined) checkEmbedded(literal, depth, where, report);
    // Refused only where the session could blind the guard with it: see refusedStatements.
    else report('unchecked-dynamic', `EXECUTE of a computed string${where}`);
  } catch {
    // An unreadable expression is reported by the PLpgSQL_expr check of the same node.
  }
}
