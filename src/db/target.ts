import { errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import { assertReachable, createDb, type Db, type DbOptions } from './connection.js';
import { parseDatabaseUrl } from './url.js';

/** The database a command is about, as deep modules receive it: a handle and its URL (for identity), never a URL alone. */
export interface TargetDatabase {
  readonly db: Db;
  readonly url: URL;
}

/**
 * The one door to a command's target database (like graphile-migrate's withClient): resolved
 * once by the command, passed down, opened at most once on first need and closed by the
 * command. Lazy because the log-reading commands (log, show) only need a database when an
 * outcome is still `committing`.
 */
export interface TargetHandle {
  /**
   * The pool, opened and checked on first call; a bad URL or an unreachable server throws (exit 2).
   * The first call's pool options win: a run names its connections after its run id.
   */
  open(pool?: DbOptions): Promise<TargetDatabase>;
  /** For commands that work from the log alone: null, with one warning, when there is no database to reach. */
  openIfPossible(log: Logger): Promise<TargetDatabase | null>;
}

const POOL = { applicationName: 'safe-run', maxConnections: 4 };

/** Runs `fn` with the target handle of `databaseUrl` and closes whatever it opened, however `fn` ends. */
export async function withTarget<T>(databaseUrl: string | null | undefined, fn: (target: TargetHandle) => Promise<T>): Promise<T> {
  // An object, not a `let`: the closures assign it, which flow analysis of a `let` does not see.
  const state: { opening: Promise<TargetDatabase> | null; warned: boolean } = { opening: null, warned: false };
  const open = (pool: DbOptions = POOL): Promise<TargetDatabase> => (state.opening ??= connect(databaseUrl, pool));
  const target: TargetHandle = {
    open,
    openIfPossible: async (log) => {
      if (!databaseUrl) return null;
      try {
        return await open();
      } catch (error) {
        if (!state.warned) log.warn('database not reachable; statuses are read from the log only', { error: errorMessage(error) });
        state.warned = true;
        return null;
      }
    },
  };
  try {
    return await fn(target);
  } finally {
    // A failed open destroyed its own pool already (connect), so only a success is closed here.
    const opened = state.opening ? await state.opening.catch(() => null) : null;
    await opened?.db.destroy();
  }
}

async function connect(databaseUrl: string | null | undefined, pool: DbOptions): Promise<TargetDatabase> {
  const url = parseDatabaseUrl(databaseUrl);
  return { db: await openChecked(url, pool), url };
}

async function openChecked(url: URL, pool: DbOptions): Promise<Db> {
  const db = createDb(url, pool);
  try {
    await assertReachable(db, url);
  } catch (error) {
    await db.destroy();
    throw error;
  }
  return db;
}

/**
 * The door to a database other than the target, for as long as `fn` runs: the script's own
 * session (under scriptRole), a scratch database a restore creates, an --into database. Checked
 * on open (a bad password is one clear message) and closed however `fn` ends, so nothing a
 * script left in its session outlives the run.
 */
export async function withDatabaseAt<T>(url: URL, pool: DbOptions, fn: (db: Db) => Promise<T>): Promise<T> {
  const db = await openChecked(url, pool);
  try {
    return await fn(db);
  } finally {
    await db.destroy();
  }
}
