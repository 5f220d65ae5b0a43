import type { ScriptRecord, Violation } from '../records/index.js';
import type { CatalogVerdict } from './catalog-verdict.js';

/**
 * The catalog changes the script's transaction made, judged against its declarations. A
 * change that belongs to a table is allowed where that table declares `ddl`; anything else
 * (a function, a view, a role, a grant on another object) needs the script-wide `ddl`.
 * Nothing in the `safe_run` schema is ever allowed: that is the evidence.
 *
 * Under READ COMMITTED the diff also shows DDL that other sessions committed meanwhile: a
 * script whose transaction did no catalog work (CatalogVerdict.ownWork) changed nothing there,
 * whatever the diff shows.
 */
export function catalogViolations(verdict: CatalogVerdict, script: Pick<ScriptRecord, 'touches' | 'ddl'>): Violation[] {
  if (!verdict.ownWork) return [];
  const violations: Violation[] = [];
  for (const change of verdict.changes) {
    const object = `${change.objectType} ${change.identity}`;
    if (change.table?.startsWith('safe_run.') || change.identity.startsWith('safe_run.')) {
      violations.push({
        object,
        rule: 'evidence-schema',
        detail: `${change.action} in safe-run's own schema (${change.detail}); a script may never touch the safe_run schema`,
      });
      continue;
    }
    const declared = script.ddl || (change.table !== undefined && script.touches[change.table]?.includes('ddl'));
    if (declared) continue;
    const where = change.table
      ? `declare ddl on ${change.table}`
      : 'declare ddl for the script (`ddl: true`, or `-- @ddl` in a .sql header)';
    violations.push({
      ...(change.table ? { table: change.table } : {}),
      object,
      rule: 'undeclared-ddl',
      detail: `${change.detail}; undeclared: ${where} if this is intended`,
    });
  }
  return violations;
}
