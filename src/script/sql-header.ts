import type { Operation } from '../records/index.js';

/**
 * The comment header of a `.sql` script (SPEC "Scripts"):
 *   -- @description Purge webhook logs older than 90 days
 *   -- @touches webhook_logs: delete
 *   -- @limit webhook_logs.delete 100000
 *   -- @critical users
 */
export interface SqlHeader {
  readonly description: string;
  readonly touches: Record<string, Operation[]>;
  readonly limits: Record<string, Partial<Record<Operation, number>>>;
  readonly critical: string[];
  /** `-- @ddl`: the script may change catalog objects beyond its declared tables. */
  readonly ddl: boolean;
}

const OPERATIONS: readonly Operation[] = ['insert', 'update', 'delete', 'truncate', 'ddl'];

export function parseSqlHeader(text: string, file: string): SqlHeader {
  const header: SqlHeader = { description: '', touches: {}, limits: {}, critical: [], ddl: false };
  const problems: string[] = [];
  for (const [index, line] of text.split('\n').entries()) {
    const match = /^\s*--\s*@(\w+)\s*(.*)$/.exec(line);
    if (!match) continue;
    const [, tag, rest] = match as unknown as [string, string, string];
    const where = `${file}:${index + 1}`;
    if (tag === 'description') (header as { description: string }).description = rest.trim();
    else if (tag === 'touches') {
      const m = /^(.+?)\s*:\s*(.+)$/.exec(rest.trim());
      if (!m) problems.push(`${where}: expected "@touches table: op[, op]"`);
      else {
        const ops = m[2]!.split(/[\s,]+/).filter(Boolean);
        const bad = ops.filter((op) => !OPERATIONS.includes(op as Operation));
        if (bad.length) problems.push(`${where}: unknown operation ${bad.join(', ')} (use ${OPERATIONS.join(', ')})`);
        header.touches[m[1]!.trim()] = [...(header.touches[m[1]!.trim()] ?? []), ...(ops as Operation[])];
      }
    } else if (tag === 'limit') {
      const m = /^(.+)\.(\w+)\s+(\d[\d_]*)$/.exec(rest.trim());
      if (!m || !OPERATIONS.includes(m[2] as Operation)) problems.push(`${where}: expected "@limit table.operation N"`);
      else header.limits[m[1]!] = { ...header.limits[m[1]!], [m[2]!]: Number(m[3]!.replace(/_/g, '')) };
    } else if (tag === 'ddl') (header as { ddl: boolean }).ddl = true;
    else if (tag === 'critical') header.critical.push(...rest.split(/[\s,]+/).filter(Boolean));
    else problems.push(`${where}: unknown header tag @${tag}`);
  }
  if (problems.length) throw new Error(problems.join('; '));
  return header;
}
