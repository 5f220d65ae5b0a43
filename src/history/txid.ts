import { sql } from 'kysely';
import type { Db } from '../db/connection.js';
import type { PgStatActivity } from '../db/schema.js';

/**
 * The live database settles what the log cannot: whether a `committing` transaction really
 * committed (txid_status), and whether a run without an outcome is still connected.
 */
export type TxStatus = 'committed' | 'aborted' | 'in progress' | 'unknown';

/**
 * One statement per xid: txid_status raises for an xid "in the future" (from another
 * cluster), and one such error must not hide the answer for the others.
 */
export async function resolveTxids(db: Db, xids: Iterable<string>): Promise<Map<string, TxStatus>> {
  const statuses = new Map<string, TxStatus>();
  for (const xid of new Set(xids)) {
    if (!/^\d+$/.test(xid)) {
      statuses.set(xid, 'unknown');
      continue;
    }
    try {
      const { rows } = await sql<{ status: string | null }>`select txid_status(${xid}::bigint) as status`.execute(db);
      const status = rows[0]?.status;
      // null: the xid is so old that its commit status was truncated away.
      statuses.set(xid, status === 'committed' || status === 'aborted' || status === 'in progress' ? status : 'unknown');
    } catch {
      statuses.set(xid, 'unknown');
    }
  }
  return statuses;
}

export interface ActiveRunSession {
  readonly pid: number;
  readonly state: string | null;
  readonly since: string | null;
}

/**
 * Sessions of guarded runs, by run id. A run sets application_name to
 * `safe-run:<script>:<runId>` on all of its connections (src/run/pipeline.ts).
 */
export async function activeRunSessions(db: Db): Promise<Map<string, ActiveRunSession>> {
  const { rows } = await sql<Pick<PgStatActivity, 'pid' | 'application_name' | 'state'> & { since: Date | null }>`
    select pid, application_name, state, coalesce(xact_start, backend_start) as since
      from pg_stat_activity
     where application_name like 'safe-run:%:%' and pid <> pg_backend_pid()`.execute(db);
  const sessions = new Map<string, ActiveRunSession>();
  for (const row of rows) {
    const runId = row.application_name.split(':')[2];
    if (runId && !sessions.has(runId)) sessions.set(runId, { pid: row.pid, state: row.state, since: row.since?.toISOString() ?? null });
  }
  return sessions;
}
