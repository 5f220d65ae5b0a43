import { sql } from 'kysely';
import type { Db } from '../../src/db/connection.js';

/**
 * The change ledger's fixed layout (shared with the ledger's own branch), made by hand, so the
 * readers of kept rows (undo, recover) are tested whether or not `safe-run protect` exists.
 */
export const LEDGER_DDL = `
create schema if not exists safe_run;
create table safe_run.ledger (
  id bigint generated always as identity primary key, xid xid8 not null, statement_at timestamptz not null,
  recorded_at timestamptz not null, session_role text not null, outer_role text, application_name text,
  client_addr inet, backend_pid int not null, backend_start timestamptz, table_schema text, table_name text,
  operation text not null, object_identity text, row_count bigint not null default 0, statement text,
  statement_fingerprint text, rows_kept bigint not null default 0, rows_not_kept bigint not null default 0);
create table safe_run.ledger_rows (
  ledger_id bigint not null references safe_run.ledger(id),
  side text not null check (side in ('old', 'new')), row jsonb not null);`;

export async function createLedger(db: Db): Promise<void> {
  await sql.raw(LEDGER_DDL).execute(db);
}

/**
 * One statement as the ledger's statement trigger records it: in the writer's own transaction
 * (`xid` null: pg_current_xact_id() of `db`), its kept rows as to_jsonb. Returns the ledger id.
 */
export async function recordStatement(
  db: Db,
  s: { xid?: string; schema?: string; table: string; operation: string; old?: readonly unknown[]; new?: readonly unknown[] },
): Promise<string> {
  const kept = (s.old?.length ?? 0) + (s.new?.length ?? 0);
  const { rows } = await sql<{ id: string }>`
    insert into safe_run.ledger (xid, statement_at, recorded_at, session_role, backend_pid, table_schema, table_name,
                                 operation, row_count, rows_kept)
    values (coalesce(${s.xid ?? null}::xid8, pg_current_xact_id()), statement_timestamp(), clock_timestamp(), session_user,
            pg_backend_pid(), ${s.schema ?? 'public'}, ${s.table}, ${s.operation}, ${Math.max(s.old?.length ?? 0, s.new?.length ?? 0)}, ${kept})
    returning id::text as id`.execute(db);
  const id = rows[0]!.id;
  for (const [side, list] of [
    ['old', s.old ?? []],
    ['new', s.new ?? []],
  ] as const) {
    for (const row of list) await sql`insert into safe_run.ledger_rows values (${id}, ${side}, ${JSON.stringify(row)}::jsonb)`.execute(db);
  }
  return id;
}
