/**
 * The first words of each statement in a SQL script, with comments, quoted strings and
 * dollar-quoted bodies taken out. Enough to find transaction control, which a script must
 * not contain: safe-run runs the file inside its own transaction, and a COMMIT in the file
 * would commit before the guards have looked.
 */
const TRANSACTION_CONTROL = /^(begin|commit|rollback|end|abort|start\s+transaction|prepare\s+transaction|commit\s+prepared|rollback\s+prepared)\b/i;

export function transactionControlStatements(text: string): string[] {
  return statementHeads(text).filter((head) => TRANSACTION_CONTROL.test(head));
}

function statementHeads(text: string): string[] {
  const code = text
    .replace(/\$([A-Za-z_][A-Za-z0-9_]*)?\$[\s\S]*?\$\1\$/g, ' ') // dollar-quoted bodies (DO blocks, functions)
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .replace(/--[^\n]*/g, ' ')
    .replace(/'(?:[^']|'')*'/g, "''")
    .replace(/"(?:[^"]|"")*"/g, '""');
  return code
    .split(';')
    .map((s) => s.trim().split(/\s+/).slice(0, 2).join(' '))
    .filter(Boolean);
}
