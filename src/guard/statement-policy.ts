import { usageError, type SafeRunError } from '../errors.js';
import { loadParser } from './pg-parser.js';
import { POLICY_ADVICE, type PolicyRule } from './policy-rules.js';
import { findingsIn } from './policy-walk.js';
import { splitStatements, type SqlStatement } from './statement-split.js';

export { GUARDED_SETTINGS, POLICY_ADVICE, REFUSED_FUNCTIONS, type PolicyRule } from './policy-rules.js';
export { splitStatements, type SqlStatement } from './statement-split.js';

/**
 * The statement policy: what a guarded script may not send, decided on PostgreSQL's own parse
 * tree (never on a regular expression, which a `$$` in a comment or an `E'\''` string fools).
 * The same function judges a `.sql` file at load time and every statement a TypeScript script
 * sends through the query gate.
 */
export interface Refusal {
  readonly statement: SqlStatement;
  readonly rule: PolicyRule;
  /** One sentence for the operator: what was found, why it is refused, what to do instead. */
  readonly reason: string;
}

export interface PolicyOptions {
  /**
   * Refuse SQL computed at run time (a dynamic EXECUTE in a DO or function body). Right for a
   * superuser session, which could use it to switch counting off unseen; a non-superuser
   * session cannot, and the server refuses its superuser-only escapes. Unknown before the
   * session exists, so a `.sql` file is judged again statement by statement in the run.
   */
  readonly refuseDynamic?: boolean;
}

/** Every refusal in a SQL text, in order. A text the grammar rejects throws a usage error. */
export async function refusedStatements(text: string, source = 'SQL', options: PolicyOptions = {}): Promise<readonly Refusal[]> {
  await loadParser();
  return refusalsIn(await splitStatements(text, source), options);
}

/** Every refusal in statements already cut (splitStatements), in order. */
export function refusalsIn(statements: readonly SqlStatement[], options: PolicyOptions = {}): readonly Refusal[] {
  const refusals: Refusal[] = [];
  for (const statement of statements) {
    const seen = new Set<string>();
    for (const { rule, what } of findingsIn(statement.node, statement.text)) {
      if (rule === 'unchecked-dynamic' && !options.refuseDynamic) continue;
      if (seen.has(`${rule} ${what}`)) continue;
      seen.add(`${rule} ${what}`);
      refusals.push({ statement, rule, reason: refusalReason(rule, what) });
    }
  }
  return refusals;
}

export const refusalReason = (rule: PolicyRule, what: string): string => `${what} is refused: ${POLICY_ADVICE[rule]}`;

/** The usage error for a script with refused statements: each one with its line, then why. */
export function policyError(refusals: readonly Refusal[], source: string): SafeRunError {
  const lines = refusals.map((r) => {
    const code = codeStart(r.statement.text.trimStart());
    return `  line ${r.statement.line + code.skipped}: ${code.line}\n    ${r.reason}`;
  });
  const count = refusals.length === 1 ? 'a statement' : `${refusals.length} statements`;
  return usageError(
    `${source} has ${count} that safe-run refuses to run:\n${lines.join('\n')}`,
    'None of it ran, and nothing was recorded. Change the script and run it again.',
  );
}

/** A statement's text starts with the comments before it (the script header, say): point at its code. */
function codeStart(text: string): { skipped: number; line: string } {
  const lines = text.split('\n');
  let skipped = 0;
  while (skipped < lines.length - 1 && /^\s*(--.*)?$/.test(lines[skipped]!)) skipped++;
  const line = (lines[skipped] ?? '').trim();
  return { skipped, line: line.length > 100 ? `${line.slice(0, 97)}...` : line };
}
