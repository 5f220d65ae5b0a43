import { DEFAULT_MAX_DROP_PERCENT, DEFAULT_MAX_UPDATE_PERCENT, type Config, type CriticalTableRule } from '../config/config.js';
import type { Operation, ScriptRecord, TableChange, TableKey, Violation } from '../records/index.js';

/**
 * The guards (SPEC "The guarded run", step 9). Pure: given what was declared and what was
 * measured, list every violation. Anything not declared is forbidden.
 */
export interface GuardInput {
  readonly script: Pick<ScriptRecord, 'touches' | 'limits' | 'critical'>;
  readonly criticalTables: Config['criticalTables'];
  readonly changes: Readonly<Record<TableKey, TableChange>>;
  /** Exact counts before the run (pre-snapshot) and inside the transaction after the script. */
  readonly countsBefore: Readonly<Record<TableKey, number>>;
  readonly countsAfter: Readonly<Record<TableKey, number>>;
  /** The run's own net rows per table, counted inside against committed (see readOwnRows); exact where present. */
  readonly ownNet?: Readonly<Record<TableKey, number>>;
  /** Tables reached from declared ones by ON DELETE CASCADE / SET NULL, for clearer messages. */
  readonly cascadeFrom?: Readonly<Record<TableKey, TableKey>>;
  /** Leaf partition -> the declared partitioned table it belongs to (see declaredParents). */
  readonly partitionParent?: Readonly<Record<TableKey, TableKey>>;
}

export function evaluateGuards(input: GuardInput): Violation[] {
  const violations: Violation[] = [];
  const changes = rollUpPartitions(input.changes, input.partitionParent ?? {});
  for (const [table, change] of Object.entries(changes)) {
    const declared = input.script.touches[table];
    if (!declared) {
      const via = input.cascadeFrom?.[table];
      violations.push({
        table,
        rule: 'undeclared-table',
        detail: `${describe(change)} in a table the script does not declare${via ? ` (reached through a foreign key cascade from ${via})` : ''}`,
      });
      continue;
    }
    violations.push(...operationViolations(table, change, declared));
    violations.push(...limitViolations(table, change, input.script.limits[table] ?? {}));
  }
  violations.push(...criticalViolations(input, changes));
  return violations;
}

/** Changes in leaves of a declared partitioned table count as changes of that table, summed. */
function rollUpPartitions(changes: GuardInput['changes'], parents: Readonly<Record<TableKey, TableKey>>): Record<TableKey, TableChange> {
  const out: Record<TableKey, TableChange> = {};
  for (const [table, c] of Object.entries(changes)) {
    const key = parents[table] ?? table;
    const sum = out[key];
    out[key] = sum ? addChanges(sum, c) : c;
  }
  return out;
}

/** Two tables' changes as one: how partitions add up to their parent. */
export function addChanges(a: TableChange, b: TableChange): TableChange {
  return {
    inserted: a.inserted + b.inserted,
    updated: a.updated + b.updated,
    deleted: a.deleted + b.deleted,
    truncated: a.truncated || b.truncated,
    ...(a.ddl || b.ddl ? { ddl: true } : {}),
  };
}

function operationViolations(table: TableKey, change: TableChange, declared: readonly Operation[]): Violation[] {
  const out: Violation[] = [];
  const used: [Operation, number][] = [
    ['insert', change.inserted],
    ['update', change.updated],
    ['delete', change.deleted],
  ];
  for (const [op, n] of used) {
    if (n > 0 && !declared.includes(op))
      out.push({
        table,
        rule: 'undeclared-operation',
        detail: `${n} row(s) ${pastTense(op)}, but the script declares only ${declared.join(', ')}`,
      });
  }
  if (change.truncated && !declared.includes('truncate'))
    out.push({ table, rule: 'undeclared-truncate', detail: 'TRUNCATE (new relfilenode) without a declared truncate' });
  if (change.ddl && !declared.includes('ddl'))
    out.push({
      table,
      rule: 'undeclared-ddl',
      detail: 'the table definition changed (columns, constraints, indexes or the table itself) without a declared ddl',
    });
  return out;
}

function limitViolations(table: TableKey, change: TableChange, limits: Partial<Record<Operation, number>>): Violation[] {
  const out: Violation[] = [];
  const used: [Operation, number][] = [
    ['insert', change.inserted],
    ['update', change.updated],
    ['delete', change.deleted],
  ];
  for (const [op, n] of used) {
    const limit = limits[op];
    if (limit !== undefined && n > limit)
      out.push({ table, rule: 'limit-exceeded', detail: `${n} row(s) ${pastTense(op)}, limit ${limit}` });
  }
  return out;
}

/**
 * Only the run's own drop counts: other sessions keep working during a run, and their
 * deletes show in the in-transaction count but must not roll back (or be pinned on) this
 * run, nor may their inserts hide its deletes. The runner reads the run's own net rows
 * (inside count minus committed count, `ownNet`), which settles it. Without that reading:
 * the transaction's counters give the run's net deletes but also count work in rolled-back
 * savepoints, and the observed drop includes other sessions; the smaller of the two is what
 * the run itself can have done.
 */
function criticalViolations(input: GuardInput, changes: Readonly<Record<TableKey, TableChange>>): Violation[] {
  const out: Violation[] = [];
  const critical = new Map<TableKey, CriticalTableRule>(Object.entries(input.criticalTables));
  for (const t of input.script.critical)
    if (!critical.has(t)) critical.set(t, { maxDropPercent: DEFAULT_MAX_DROP_PERCENT, maxUpdatePercent: DEFAULT_MAX_UPDATE_PERCENT });
  for (const [table, rule] of critical) {
    const before = input.countsBefore[table];
    const after = input.countsAfter[table];
    const ownNet = input.ownNet?.[table];
    if (before === undefined || after === undefined || before === 0 || (!changes[table] && ownNet === undefined)) continue;
    const change = changes[table] ?? { inserted: 0, updated: 0, deleted: 0, truncated: false };
    const dropViolation = criticalDrop(table, before, after, change, rule.maxDropPercent, ownNet);
    if (dropViolation) out.push(dropViolation);
    // Updates counted by the run's own counters: an UPDATE that blanks every email empties the table as surely as a DELETE.
    const updatePercent = (change.updated / before) * 100;
    if (updatePercent > rule.maxUpdatePercent) {
      out.push({
        table,
        rule: 'critical-update',
        detail: `critical table would have ${updatePercent.toFixed(1)}% of its rows updated (${change.updated} of ${before}), allowed ${rule.maxUpdatePercent}%`,
      });
    }
  }
  return out;
}

function criticalDrop(
  table: TableKey,
  before: number,
  after: number,
  change: TableChange,
  maxDropPercent: number,
  ownNet?: number,
): Violation | null {
  const counted = change.truncated ? before : change.deleted - change.inserted;
  // Exact when the run's own net rows were read; else the smaller of its counters and the observed drop.
  const drop = ownNet !== undefined ? -ownNet : Math.min(counted, before - after);
  if (drop <= 0) return null;
  const ownAfter = before - drop;
  const dropPercent = (drop / before) * 100;
  if (ownAfter === 0) return { table, rule: 'critical-empty', detail: `critical table would go from ${before} rows to 0` };
  if (dropPercent > maxDropPercent)
    return {
      table,
      rule: 'critical-drop',
      detail: `critical table would drop ${dropPercent.toFixed(1)}% (${before} -> ${ownAfter}), allowed ${maxDropPercent}%`,
    };
  return null;
}

function describe(change: TableChange): string {
  const parts = [];
  if (change.inserted) parts.push(`${change.inserted} inserted`);
  if (change.updated) parts.push(`${change.updated} updated`);
  if (change.deleted) parts.push(`${change.deleted} deleted`);
  if (change.truncated) parts.push('truncated');
  if (change.ddl) parts.push('DDL');
  return parts.join(', ') || 'changed';
}

function pastTense(op: Operation): string {
  return { insert: 'inserted', update: 'updated', delete: 'deleted', truncate: 'truncated', ddl: 'altered' }[op];
}
