import { sql } from 'kysely';
import type { DatabaseIdentity } from '../records/index.js';
import { type Db, onlyRow } from './connection.js';

/**
 * Who the database is. `check` and `blame` compare these between observations: the same
 * key with a different oid or system identifier means the database was recreated; a new
 * stats reset or postmaster start explains counters that went backwards.
 *
 * Works on a pool or inside a transaction: it issues only reads that cannot fail for lack
 * of privileges, because an error would abort the caller's transaction.
 */
export async function readIdentity(db: Db, url?: URL): Promise<DatabaseIdentity> {
  const row = (
    await sql<IdentityRow>`
      select d.oid::int8 as oid,
             current_database() as name,
             current_setting('server_version') as server_version,
             current_setting('server_version_num')::int as server_version_num,
             current_user as current_user,
             host(inet_server_addr()) as host,
             inet_server_port() as port,
             pg_postmaster_start_time() as postmaster_start,
             s.stats_reset as stats_reset,
             has_function_privilege('pg_catalog.pg_control_system()', 'execute') as may_read_control
        from pg_catalog.pg_database d
        left join pg_catalog.pg_stat_database s on s.datid = d.oid
       where d.datname = current_database()`.execute(db)
  ).rows[0];
  if (!row) throw new Error('current_database() is missing from pg_database');

  const host = row.host ?? url?.hostname.replace(/^\[|\]$/g, '') ?? 'localhost';
  const port = row.port ?? (url?.port ? Number(url.port) : 5432);
  return {
    key: `${host}:${port}/${row.name}`,
    oid: row.oid,
    name: row.name,
    systemIdentifier: row.may_read_control ? await readSystemIdentifier(db) : null,
    serverVersion: row.server_version,
    serverVersionNum: row.server_version_num,
    currentUser: row.current_user,
    host,
    port,
    postmasterStart: row.postmaster_start.toISOString(),
    statsReset: row.stats_reset ? row.stats_reset.toISOString() : null,
  };
}

interface IdentityRow {
  readonly oid: number;
  readonly name: string;
  readonly server_version: string;
  readonly server_version_num: number;
  readonly current_user: string;
  /** Null over a Unix socket. */
  readonly host: string | null;
  readonly port: number | null;
  readonly postmaster_start: Date;
  readonly stats_reset: Date | null;
  readonly may_read_control: boolean;
}

/**
 * A separate statement behind the privilege check: pg_control_system() is often revoked
 * from ordinary roles, and the identity must still be readable by them. The catch covers
 * a revoke between the check and the call when we are not inside a transaction.
 */
async function readSystemIdentifier(db: Db): Promise<string | null> {
  try {
    const result = await sql<{ id: string }>`select system_identifier::text as id from pg_catalog.pg_control_system()`.execute(db);
    return result.rows[0]?.id ?? null;
  } catch {
    return null;
  }
}

export interface WalPosition {
  /** pg_current_wal_insert_lsn() (the replay position on a standby). */
  readonly lsn: string;
  /** The current transaction's id, or null when it has not written anything yet. */
  readonly xid: string | null;
}

/**
 * Brackets a run for point-in-time recovery (SPEC "Facts measured"): recovery can stop
 * exactly before the LSN read at the start of the script's transaction.
 */
export async function readWalPosition(db: Db): Promise<WalPosition> {
  const row = onlyRow(
    (
      await sql<{ lsn: string; xid: string | null }>`
      select (case when pg_is_in_recovery() then pg_last_wal_replay_lsn() else pg_current_wal_insert_lsn() end)::text as lsn,
             txid_current_if_assigned()::text as xid`.execute(db)
    ).rows,
  );
  return { lsn: row.lsn, xid: row.xid };
}

/** The server's major version from server_version_num (150004 -> 15, 90624 -> 9). */
export function serverMajor(identity: Pick<DatabaseIdentity, 'serverVersionNum'>): number {
  return Math.floor(identity.serverVersionNum / 10_000);
}
