import { sql } from 'kysely';
import { parseJson, type CliResult } from './cli.js';
import { countRows } from './db.js';
import type { Workspace } from './workspace.js';
import type { RunResult } from '../../src/run/types.js';

/**
 * Building blocks for the attack tests: scripts that try to get past a guard, and readings
 * of everything such a script could have left behind (rows, triggers, grants, objects).
 */
export const WATCHED_TABLES = ['users', 'oidc_models', 'credit_allocation', 'subscriptions', 'usage_events'] as const;

export async function allCounts(ws: Workspace): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const t of WATCHED_TABLES) counts[t] = await countRows(ws.t.db, t);
  return counts;
}

/**
 * The catalog objects an undeclared DDL attack would leave: the state of every trigger on
 * users (DISABLE TRIGGER ALL flips the internal FK ones too), its ACL, its comment, its
 * policies, and every function and view in public.
 */
export async function catalogState(ws: Workspace): Promise<Record<string, unknown>> {
  const { rows } = await sql<Record<string, unknown>>`
    select (select pg_catalog.string_agg(t.tgname::text || ':' || t.tgenabled::text, ',' order by t.tgname)
              from pg_catalog.pg_trigger t where t.tgrelid = 'public.users'::pg_catalog.regclass) as triggers,
           (select c.relacl::text from pg_catalog.pg_class c where c.oid = 'public.users'::pg_catalog.regclass) as acl,
           pg_catalog.obj_description('public.users'::pg_catalog.regclass, 'pg_class') as comment,
           (select pg_catalog.count(*)::int from pg_catalog.pg_policy p where p.polrelid = 'public.users'::pg_catalog.regclass) as policies,
           (select pg_catalog.string_agg(p.proname, ',' order by p.proname) from pg_catalog.pg_proc p
             where p.pronamespace = 'public'::pg_catalog.regnamespace) as functions,
           (select pg_catalog.string_agg(c.relname, ',' order by c.relname) from pg_catalog.pg_class c
             where c.relnamespace = 'public'::pg_catalog.regnamespace and c.relkind in ('v', 'm')) as views`.execute(ws.t.db);
  return rows[0]!;
}

/** A TypeScript script: `body` runs inside `run({ db })`, with `sql` from safe-run in scope. */
export const tsScript = (name: string, body: string, declarations = "touches: { oidc_models: ['delete'] },"): string => `
import { defineScript, sql } from 'safe-run';
export default defineScript({
  name: '${name}',
  description: 'an attack on the guard',
  ${declarations}
  async run({ db }) { ${body} },
});
`;

/** One statement sent as-is through the gate, as a line of a TypeScript script body. */
export const send = (text: string): string => `await sql.raw(${JSON.stringify(text)}).execute(db);`;

/** The same, with the error swallowed: a script that goes on after a refusal. */
export const sendQuietly = (text: string): string => `try { ${send(text)} } catch {}`;

/** A .sql script with a header. */
export const sqlScript = (body: string, header = '-- @touches oidc_models: delete'): string =>
  `-- @description an attack on the guard\n${header}\n${body}\n`;

export const DELETE_EXAMPLE_USERS = "delete from users where email like '%example.com'";
export const DELETE_ONE_SESSION = "delete from oidc_models where id = 'sess-valid-pro'";

export const rules = (json: RunResult): string[] => json.violations.map((v) => v.rule);

/** The run's JSON; fails with the CLI's stderr when stdout is not one document. */
export const runJson = (result: CliResult): RunResult => parseJson<RunResult>(result);

export interface BlameChange {
  readonly before: number | null;
  readonly after: number | null;
  readonly attribution: { readonly type: string; readonly runId?: string; readonly escaped?: boolean };
}

export async function blame(ws: Workspace, table: string): Promise<readonly BlameChange[]> {
  const result = await ws.cli(['blame', table, '--json']);
  return parseJson<{ changes: BlameChange[] }>(result).changes;
}

/** Polls a condition instead of sleeping a guessed time; throws when it never holds. */
export async function waitFor(condition: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition never held');
    await new Promise((r) => setTimeout(r, 50));
  }
}
