import { AsyncLocalStorage } from 'node:async_hooks';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { ExitCode, SafeRunError, errorCode, errorMessage } from '../errors.js';
import { withExtraCa } from './extra-ca.js';
import type { Database } from './schema.js';
import { redactUrl } from './url.js';

/**
 * safe-run's own handle sees its evidence tables and the catalogs it reads (schema.ts); a
 * script's tables are not in it, and scripts bring their own database interface.
 */
export type Db = Kysely<Database>;

// int8 and numeric come back as strings by default; counts and counters fit in a double.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

/**
 * A script's own statements (the gate runs each inside asScriptStatement) get int8 as pg and
 * Kysely give it by default, a string, digit for digit: a bigint id past 2^53 read back as a
 * double would name another row in the script's next statement. The runner's own reads, on
 * the same session, keep the numbers set above.
 */
const scriptStatement = new AsyncLocalStorage<true>();
const SCRIPT_TYPES = {
  getTypeParser: (oid: number, format?: 'text' | 'binary') =>
    oid === pg.types.builtins.INT8 ? (value: string) => value : pg.types.getTypeParser(oid, format),
};

export function asScriptStatement<T>(run: () => Promise<T>): Promise<T> {
  return scriptStatement.run(true, run);
}

class SafeRunClient extends pg.Client {
  // pg's overloads, as Kysely calls them: (text, values) for a promise.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  override query(config: any, values?: any, callback?: any): any {
    if (typeof config !== 'string' || !scriptStatement.getStore()) return super.query(config, values, callback);
    const done = typeof values === 'function' ? values : callback;
    const exact: pg.QueryConfig = { text: config, values: typeof values === 'function' ? undefined : values, types: SCRIPT_TYPES };
    return done ? super.query(exact, done) : super.query(exact);
  }
}

export interface DbOptions {
  readonly applicationName?: string;
  readonly maxConnections?: number;
  /** Idle connections do not keep the process alive (a pool no command closes, e.g. the evidence store's). */
  readonly allowExitOnIdle?: boolean;
}

/**
 * Where the runner resolves names while it measures inside the script's transaction, so no
 * object the script created (a temporary view named pg_stat_xact_user_tables) can stand in
 * for a catalog. The runner's own pool needs nothing of the kind: it never hosts the
 * script's session, and outside pg_temp nothing is searched before pg_catalog.
 */
export const CATALOG_SEARCH_PATH = 'pg_catalog, pg_temp';

/** Connections each pool made by createDb may open, by handle (see poolCapacity). */
const capacities = new WeakMap<object, number>();

/**
 * How many connections `db`'s pool may open: what createDb was given. 1 for any other handle
 * (a transaction, a handle with a plugin), so that a caller who would need a second
 * connection while holding one does its work on the one it holds instead of waiting forever.
 */
export function poolCapacity(db: object): number {
  return capacities.get(db) ?? 1;
}

/** A pool on `url`, typed as safe-run's own handle unless the caller (a test, the demo) names its tables. */
export function createDb<DB = Database>(url: URL | string, options: DbOptions = {}): Kysely<DB> {
  const max = options.maxConnections ?? 4;
  const pool = new pg.Pool(
    withExtraCa({
      connectionString: typeof url === 'string' ? url : url.href,
      max,
      application_name: options.applicationName ?? 'safe-run',
      connectionTimeoutMillis: 10_000,
      allowExitOnIdle: options.allowExitOnIdle ?? false,
      Client: SafeRunClient,
    }),
  );
  // A client that loses its server (killed backend, restart) emits 'error'; unhandled, that
  // kills the process. The query in flight rejects anyway, and that is where it is reported.
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
  capacities.set(db, max);
  return db;
}

/** Connect once up front so that a bad host or password is one clear message, not a stack. */
export async function assertReachable(db: Db, url: URL): Promise<void> {
  try {
    await sql`select 1`.execute(db);
  } catch (error) {
    throw new SafeRunError(
      `Cannot connect to ${redactUrl(url)}: ${connectionProblem(error)}`,
      ExitCode.usage,
      UNTRUSTED_CERTIFICATE.has(errorCode(error) ?? '')
        ? "Name the authority that signed the server's certificate: add sslrootcert=<CA file> to the URL (pg_dump reads it too)."
        : 'Check that the server is running and that the URL, user and password are right (`safe-run doctor` checks all of it).',
      { cause: error },
    );
  }
}

/** Node's codes for a server certificate no authority it knows signed. */
const UNTRUSTED_CERTIFICATE = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
]);

function connectionProblem(error: unknown): string {
  const code = errorCode(error);
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ENOTFOUND') return 'host not found';
  if (code === '28P01' || code === '28000') return 'authentication failed';
  if (code === '3D000') return 'database does not exist';
  return errorMessage(error).replace(/:\/\/[^@\s]*@/g, '://***@');
}

/** The row of a statement that always returns exactly one (select count(*), select pg_backend_pid()); none is a bug (exit 70). */
export function onlyRow<R>(rows: readonly R[]): R {
  const [row] = rows;
  if (row === undefined) throw new Error('a single-row statement returned no row');
  return row;
}

/** A single dedicated connection for work that needs session state (locks, exported snapshots). */
export async function withClient<T>(db: Db, fn: (conn: Db) => Promise<T>): Promise<T> {
  return db.connection().execute(fn);
}

/**
 * `read` on a connection of its own, in a read-only transaction that imports the exported
 * snapshot: it sees exactly what the exporting transaction sees. The exporting transaction
 * must stay open until this one has begun.
 */
export async function inImportedSnapshot<T>(db: Db, snapshotId: string, read: (trx: Db) => Promise<T>): Promise<T> {
  return db
    .transaction()
    .setIsolationLevel('repeatable read')
    .setAccessMode('read only')
    .execute(async (trx) => {
      await sql`set transaction snapshot ${sql.lit(snapshotId)}`.execute(trx);
      return read(trx);
    });
}
