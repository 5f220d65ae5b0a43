import { evaluateGuards, type GuardInput } from '../src/guard/rules.js';
import type { Operation, TableChange, ViolationRule } from '../src/records/index.js';

/**
 * evaluateGuards is pure, so every rule is tested here without a database: each case is what a
 * script declared and what the runner measured, and the rules it must (or must not) break.
 * Each refusal sits next to the allowed case one step away from it, so a boundary that moves shows.
 */

const change = (partial: Partial<TableChange> = {}): TableChange => ({ inserted: 0, updated: 0, deleted: 0, truncated: false, ...partial });

interface Case {
  readonly name: string;
  readonly touches?: Readonly<Record<string, readonly Operation[]>>;
  readonly limits?: GuardInput['script']['limits'];
  readonly critical?: readonly string[];
  readonly criticalTables?: GuardInput['criticalTables'];
  readonly changes: GuardInput['changes'];
  readonly before?: Readonly<Record<string, number>>;
  readonly after?: Readonly<Record<string, number>>;
  readonly cascadeFrom?: GuardInput['cascadeFrom'];
  readonly partitionParent?: GuardInput['partitionParent'];
  /** The rules broken, as `rule table`, in any order; empty for an allowed run. */
  readonly refused: readonly string[];
  /** Text the (single) violation's detail must contain. */
  readonly detail?: string;
}

const USERS = 'public.users';
const SESSIONS = 'public.sessions';
const EVENTS = 'public.events';
const critical10 = { [USERS]: { maxDropPercent: 10, maxUpdatePercent: 50 } };

const cases: readonly Case[] = [
  // undeclared-table
  {
    name: 'a declared table may change',
    touches: { [SESSIONS]: ['delete'] },
    changes: { [SESSIONS]: change({ deleted: 3 }) },
    refused: [],
  },
  {
    name: 'an undeclared table may not',
    touches: { [SESSIONS]: ['delete'] },
    changes: { [USERS]: change({ updated: 1 }) },
    refused: [`undeclared-table ${USERS}`],
    detail: '1 updated in a table the script does not declare',
  },
  {
    name: 'a table reached by a cascade is named with the declared table it came from',
    touches: { [USERS]: ['delete'] },
    changes: { [USERS]: change({ deleted: 1 }), [SESSIONS]: change({ deleted: 4 }) },
    cascadeFrom: { [SESSIONS]: USERS },
    refused: [`undeclared-table ${SESSIONS}`],
    detail: `4 deleted in a table the script does not declare (reached through a foreign key cascade from ${USERS})`,
  },
  // undeclared-operation
  {
    name: 'a declared operation is allowed',
    touches: { [SESSIONS]: ['insert', 'update'] },
    changes: { [SESSIONS]: change({ inserted: 2, updated: 5 }) },
    refused: [],
  },
  {
    name: 'an undeclared operation is refused',
    touches: { [SESSIONS]: ['insert'] },
    changes: { [SESSIONS]: change({ inserted: 2, deleted: 1 }) },
    refused: [`undeclared-operation ${SESSIONS}`],
    detail: '1 row(s) deleted, but the script declares only insert',
  },
  // limit-exceeded: the limit itself is allowed
  {
    name: 'exactly the limit passes',
    touches: { [SESSIONS]: ['delete'] },
    limits: { [SESSIONS]: { delete: 100 } },
    changes: { [SESSIONS]: change({ deleted: 100 }) },
    refused: [],
  },
  {
    name: 'one over the limit fails',
    touches: { [SESSIONS]: ['delete'] },
    limits: { [SESSIONS]: { delete: 100 } },
    changes: { [SESSIONS]: change({ deleted: 101 }) },
    refused: [`limit-exceeded ${SESSIONS}`],
    detail: '101 row(s) deleted, limit 100',
  },
  // undeclared-truncate
  {
    name: 'a declared truncate passes',
    touches: { [SESSIONS]: ['truncate'] },
    changes: { [SESSIONS]: change({ truncated: true }) },
    refused: [],
  },
  {
    name: 'an undeclared truncate fails',
    touches: { [SESSIONS]: ['delete'] },
    changes: { [SESSIONS]: change({ truncated: true }) },
    refused: [`undeclared-truncate ${SESSIONS}`],
  },
  // undeclared-ddl
  { name: 'declared ddl passes', touches: { [SESSIONS]: ['ddl'] }, changes: { [SESSIONS]: change({ ddl: true }) }, refused: [] },
  {
    name: 'undeclared ddl fails',
    touches: { [SESSIONS]: ['update'] },
    changes: { [SESSIONS]: change({ ddl: true }) },
    refused: [`undeclared-ddl ${SESSIONS}`],
  },
  // critical-drop: maxDropPercent 10 of 100 rows, so 10 rows pass and 11 fail
  {
    name: 'a critical table may lose exactly its allowed share',
    touches: { [USERS]: ['delete'] },
    criticalTables: critical10,
    changes: { [USERS]: change({ deleted: 10 }) },
    before: { [USERS]: 100 },
    after: { [USERS]: 90 },
    refused: [],
  },
  {
    name: 'one row more is a critical drop',
    touches: { [USERS]: ['delete'] },
    criticalTables: critical10,
    changes: { [USERS]: change({ deleted: 11 }) },
    before: { [USERS]: 100 },
    after: { [USERS]: 89 },
    refused: [`critical-drop ${USERS}`],
    detail: '11.0% (100 -> 89), allowed 10%',
  },
  {
    name: 'a table the script marks critical gets the default limits',
    touches: { [USERS]: ['delete'] },
    critical: [USERS],
    changes: { [USERS]: change({ deleted: 11 }) },
    before: { [USERS]: 100 },
    after: { [USERS]: 89 },
    refused: [`critical-drop ${USERS}`],
  },
  // critical-empty: emptying wins over the percentage, even with a 100% allowance
  {
    name: 'emptying a critical table is refused',
    touches: { [USERS]: ['delete'] },
    criticalTables: { [USERS]: { maxDropPercent: 100, maxUpdatePercent: 100 } },
    changes: { [USERS]: change({ deleted: 5 }) },
    before: { [USERS]: 5 },
    after: { [USERS]: 0 },
    refused: [`critical-empty ${USERS}`],
    detail: 'from 5 rows to 0',
  },
  {
    name: 'truncating a critical table empties it',
    touches: { [USERS]: ['truncate'] },
    criticalTables: critical10,
    changes: { [USERS]: change({ truncated: true }) },
    before: { [USERS]: 5 },
    after: { [USERS]: 0 },
    refused: [`critical-empty ${USERS}`],
  },
  {
    name: 'a critical table that was already empty cannot be emptied',
    touches: { [USERS]: ['insert', 'delete'] },
    criticalTables: critical10,
    changes: { [USERS]: change({ inserted: 1, deleted: 1 }) },
    before: { [USERS]: 0 },
    after: { [USERS]: 0 },
    refused: [],
  },
  // critical-update: maxUpdatePercent 50 of 100 rows
  {
    name: 'updating exactly the allowed share passes',
    touches: { [USERS]: ['update'] },
    criticalTables: critical10,
    changes: { [USERS]: change({ updated: 50 }) },
    before: { [USERS]: 100 },
    after: { [USERS]: 100 },
    refused: [],
  },
  {
    name: 'updating one row more is refused',
    touches: { [USERS]: ['update'] },
    criticalTables: critical10,
    changes: { [USERS]: change({ updated: 51 }) },
    before: { [USERS]: 100 },
    after: { [USERS]: 100 },
    refused: [`critical-update ${USERS}`],
    detail: '51.0% of its rows updated (51 of 100), allowed 50%',
  },
  // Other sessions keep working during a run: only the run's own drop counts.
  {
    name: "another session's deletes are not pinned on the run",
    touches: { [USERS]: ['delete'] },
    criticalTables: critical10,
    changes: { [USERS]: change({ deleted: 1 }) },
    before: { [USERS]: 100 },
    after: { [USERS]: 40 },
    refused: [],
  },
  {
    name: 'deletes undone by a rolled-back savepoint count only as far as the table really dropped',
    touches: { [USERS]: ['delete'] },
    criticalTables: critical10,
    changes: { [USERS]: change({ deleted: 60 }) },
    before: { [USERS]: 100 },
    after: { [USERS]: 95 },
    refused: [],
  },
  {
    name: 'a drop both the counters and the count agree on is refused',
    touches: { [USERS]: ['delete'] },
    criticalTables: critical10,
    changes: { [USERS]: change({ deleted: 30 }) },
    before: { [USERS]: 100 },
    after: { [USERS]: 70 },
    refused: [`critical-drop ${USERS}`],
  },
  {
    name: "the run's own inserts offset its deletes, and the net drop is judged",
    touches: { [USERS]: ['insert', 'delete'] },
    criticalTables: critical10,
    changes: { [USERS]: change({ inserted: 5, deleted: 25 }) },
    before: { [USERS]: 100 },
    after: { [USERS]: 80 },
    refused: [`critical-drop ${USERS}`],
  },
  // Partitions roll up into the declared parent: leaves are neither undeclared nor limited separately.
  {
    name: 'changes in leaf partitions count as the declared parent',
    touches: { [EVENTS]: ['delete'] },
    limits: { [EVENTS]: { delete: 10 } },
    changes: { 'public.events_2024': change({ deleted: 4 }), 'public.events_2025': change({ deleted: 6 }) },
    partitionParent: { 'public.events_2024': EVENTS, 'public.events_2025': EVENTS },
    refused: [],
  },
  {
    name: 'a limit on the parent is not escaped by spreading the deletes over its partitions',
    touches: { [EVENTS]: ['delete'] },
    limits: { [EVENTS]: { delete: 10 } },
    changes: { 'public.events_2024': change({ deleted: 5 }), 'public.events_2025': change({ deleted: 6 }) },
    partitionParent: { 'public.events_2024': EVENTS, 'public.events_2025': EVENTS },
    refused: [`limit-exceeded ${EVENTS}`],
    detail: '11 row(s) deleted, limit 10',
  },
  {
    name: 'a truncated or altered leaf makes the parent truncated or altered',
    touches: { [EVENTS]: ['delete'] },
    changes: { 'public.events_2024': change({ truncated: true }), 'public.events_2025': change({ ddl: true }) },
    partitionParent: { 'public.events_2024': EVENTS, 'public.events_2025': EVENTS },
    refused: [`undeclared-truncate ${EVENTS}`, `undeclared-ddl ${EVENTS}`],
  },
];

describe('evaluateGuards', () => {
  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const violations = evaluateGuards({
      script: { touches: c.touches ?? {}, limits: c.limits ?? {}, critical: c.critical ?? [] },
      criticalTables: c.criticalTables ?? {},
      changes: c.changes,
      countsBefore: c.before ?? {},
      countsAfter: c.after ?? {},
      cascadeFrom: c.cascadeFrom,
      partitionParent: c.partitionParent,
    });
    expect(violations.map((v) => `${v.rule} ${v.table}`).sort()).toEqual([...c.refused].sort());
    if (c.detail) expect(violations[0]?.detail).toContain(c.detail);
  });

  it('covers every rule it can report, allowed and refused', () => {
    const rules: readonly ViolationRule[] = [
      'undeclared-table',
      'undeclared-operation',
      'limit-exceeded',
      'critical-empty',
      'critical-drop',
      'critical-update',
      'undeclared-truncate',
      'undeclared-ddl',
    ];
    for (const rule of rules) expect(cases.some((c) => c.refused.some((r) => r.startsWith(`${rule} `)))).toBe(true);
  });
});
