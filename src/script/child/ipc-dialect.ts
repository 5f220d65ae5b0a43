import type {
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  CompiledQuery,
  DatabaseConnection,
  Dialect,
  Driver,
  Kysely,
  QueryResult,
} from 'kysely';
import { kysely } from './kysely.js';
import type { ScriptQuery, ScriptQueryResult } from '../gate.js';

/** Sends one compiled statement to the runner and waits for its rows (see ./main.ts). */
export type SendQuery = (query: ScriptQuery) => Promise<ScriptQueryResult>;

export const RUNNER_OWNS_TRANSACTION =
  'The runner owns the transaction: db.transaction() and db.startTransaction() are not available to a script. ' +
  'Use savepoints (sql`savepoint s1`) or just run the statements; everything the script does is one guarded transaction.';

/**
 * A PostgreSQL dialect whose only connection is the IPC channel: Kysely compiles as usual,
 * and each compiled statement crosses to the runner, which checks it and runs it on the
 * guarded transaction. The child never holds a socket to the database.
 */
export class IpcDialect implements Dialect {
  constructor(private readonly send: SendQuery) {}
  createAdapter(): PostgresAdapter {
    return new (kysely().PostgresAdapter)();
  }
  createDriver(): Driver {
    return new IpcDriver(this.send);
  }
  createQueryCompiler(): PostgresQueryCompiler {
    return new (kysely().PostgresQueryCompiler)();
  }
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  createIntrospector(db: Kysely<any>): PostgresIntrospector {
    return new (kysely().PostgresIntrospector)(db);
  }
}

class IpcDriver implements Driver {
  private readonly connection: DatabaseConnection;
  constructor(send: SendQuery) {
    this.connection = new IpcConnection(send);
  }
  async init(): Promise<void> {}
  async acquireConnection(): Promise<DatabaseConnection> {
    return this.connection;
  }
  async beginTransaction(): Promise<void> {
    throw new Error(RUNNER_OWNS_TRANSACTION);
  }
  async commitTransaction(): Promise<void> {
    throw new Error(RUNNER_OWNS_TRANSACTION);
  }
  async rollbackTransaction(): Promise<void> {
    throw new Error(RUNNER_OWNS_TRANSACTION);
  }
  async releaseConnection(): Promise<void> {}
  async destroy(): Promise<void> {}
}

class IpcConnection implements DatabaseConnection {
  constructor(private readonly send: SendQuery) {}

  async executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    const result = await this.send({ sql: compiled.sql, parameters: [...compiled.parameters] });
    // Kysely's own pg driver reports affected rows as a bigint; scripts written against it keep working.
    const affected = result.numAffectedRows;
    return { rows: result.rows as R[], ...(affected !== undefined ? { numAffectedRows: BigInt(affected) } : {}) };
  }

  // eslint-disable-next-line require-yield
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('Streaming queries are not available to a script: each statement crosses to the runner whole.');
  }
}
