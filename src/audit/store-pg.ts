import { createPublicKey, type KeyObject } from 'node:crypto';
import { sql, type QueryExecutorProvider } from 'kysely';
import { errorMessage, ExitCode, SafeRunError, usageError } from '../errors.js';
import type { ChainAnchor } from './anchor.js';
import { MalformedEntryError, parseEntryLine } from './entry.js';
import { keyIdOf, type PublicKeySet } from './keys.js';
import type { RawLine } from './read.js';
import { installEvidenceSchema, type EvidenceDb } from './store-schema.js';
import type { EvidenceStore, SignedLine } from './store.js';
import type { AuditEntry } from './types.js';

/** Which chain: the target's server (pg_control_system) and its database name. */
export interface ChainTarget {
  readonly systemIdentifier: string;
  readonly databaseName: string;
}

export interface DatabaseStoreOptions {
  /** The evidence database, opened by the command layer. */
  readonly db: EvidenceDb;
  /** For messages; never carries a password (redactUrl). */
  readonly where: string;
  /** The target's identity, read on first use (commands that never touch evidence never connect). */
  readonly target: () => Promise<ChainTarget>;
}

/** A database store can also take a whole verified chain at once (`safe-run evidence import`). */
export interface DatabaseEvidenceStore extends EvidenceStore {
  readonly kind: 'database';
  /** Loads `lines` (already verified) as the target's chain; refuses when the chain has entries. */
  importLines(lines: readonly string[], keys: Iterable<KeyObject>): Promise<number>;
}

const PAGE = 1000;

/**
 * One chain per target database in `safe_run_evidence` (store-schema.ts). The chain head row
 * is locked (`select ... for update`) for each append, so writers on many hosts queue there
 * and each one signs on top of the real head; the entry's time is the evidence database's
 * clock_timestamp(), so hosts with skewed clocks still write a chain whose time goes forward.
 */
export function databaseStore(options: DatabaseStoreOptions): DatabaseEvidenceStore {
  const { db, where } = options;
  let ready: Promise<ChainTarget> | null = null;
  // The schema and the refusal of the target's own database, once per process.
  const prepare = (): Promise<ChainTarget> =>
    (ready ??= (async () => {
      const target = await options.target();
      await refuseTargetItself(db, target, where);
      await installEvidenceSchema(db);
      return target;
    })());
  let chainId: number | null = null;
  /** The chain's id, or null when nothing was ever written for this target (reads see an empty chain). */
  const findChain = async (): Promise<number | null> => {
    if (chainId !== null) return chainId;
    const target = await prepare();
    const { rows } = await sql<{ id: number }>`
      select chain_id as id from safe_run_evidence.chains
       where system_identifier = ${target.systemIdentifier} and database_name = ${target.databaseName}`.execute(db);
    return (chainId = rows[0]?.id ?? null);
  };
  const ensureChain = async (): Promise<number> => {
    const found = await findChain();
    if (found !== null) return found;
    const target = await prepare();
    await sql`
      insert into safe_run_evidence.chains (system_identifier, database_name)
      values (${target.systemIdentifier}, ${target.databaseName}) on conflict do nothing`.execute(db);
    const id = await findChain();
    if (id === null) throw new Error('the chain row just inserted is missing');
    return id;
  };
  const guarded = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (error) {
      throw storeFailure(what, where, error);
    }
  };

  async function* pages(keysOnly: boolean, backward: boolean, from = 0): AsyncGenerator<string> {
    const id = await guarded('Cannot read', findChain);
    if (id === null) return;
    let after = backward ? Number.MAX_SAFE_INTEGER : from;
    for (;;) {
      const rows = await guarded('Cannot read', async () => {
        const filter = keysOnly ? sql`and (seq = 1 or kind in ('key.add', 'key.rotate'))` : sql``;
        const page = backward
          ? sql<{ seq: number; line: string }>`select seq, line from safe_run_evidence.entries
               where chain_id = ${id} and seq < ${after} ${filter} order by seq desc limit ${PAGE}`
          : sql<{ seq: number; line: string }>`select seq, line from safe_run_evidence.entries
               where chain_id = ${id} and seq > ${after} ${filter} order by seq limit ${PAGE}`;
        return (await page.execute(db)).rows;
      });
      for (const row of rows) yield row.line;
      if (rows.length < PAGE) return;
      after = Number(rows[rows.length - 1]!.seq);
    }
  }

  const readHeadRow = async (): Promise<{ seq: number; hash: string | null; logId: string | null; updatedAt: Date } | null> => {
    const id = await findChain();
    if (id === null) return null;
    const { rows } = await sql<{ seq: number; hash: string | null; log_id: string | null; updated_at: Date }>`
      select seq, hash, log_id, updated_at from safe_run_evidence.chains where chain_id = ${id}`.execute(db);
    const row = rows[0];
    return row ? { seq: Number(row.seq), hash: row.hash, logId: row.log_id, updatedAt: row.updated_at } : null;
  };

  const anchor: ChainAnchor = {
    // The store writes its head with each entry, in the same transaction.
    record: async () => {},
    read: async () => {
      const row = await readHeadRow();
      return row && row.seq > 0 && row.hash ? { seq: row.seq, hash: row.hash } : null;
    },
    list: async () => {
      const row = await readHeadRow();
      if (!row?.hash || !row.logId) return [];
      return [{ logId: row.logId, seq: row.seq, hash: row.hash, keyId: null, evidenceDir: null, updatedAt: row.updatedAt.toISOString() }];
    },
  };

  return {
    kind: 'database',
    where,
    async *readLines(readOptions) {
      let line = readOptions?.after?.seq ?? 0;
      for await (const text of pages(readOptions?.keysOnly === true, false, line))
        yield { text, line: ++line, terminated: true, end: 0 } as RawLine;
    },
    lineAt: (at) =>
      guarded('Cannot read', async () => {
        const id = await findChain();
        if (id === null) return null;
        const { rows } = await sql<{ line: string }>`
          select line from safe_run_evidence.entries where chain_id = ${id} and seq = ${at.seq}`.execute(db);
        return rows[0]?.line ?? null;
      }),
    readLinesBackward: () => pages(false, true),
    head: () =>
      guarded('Cannot read', async () => {
        const id = await findChain();
        if (id === null) return null;
        const { rows } = await sql<{ seq: number; line: string | null }>`
          select c.seq, e.line from safe_run_evidence.chains c
            left join safe_run_evidence.entries e on e.chain_id = c.chain_id and e.seq = c.seq
           where c.chain_id = ${id}`.execute(db);
        const row = rows[0];
        return row && Number(row.seq) > 0 ? headOf(row.line, Number(row.seq), where) : null;
      }),
    logId: () => guarded('Cannot read', async () => (await readHeadRow())?.logId ?? null),
    append: <B>(
      sign: (head: AuditEntry | null, now: Date) => Promise<SignedLine<B>>,
      _log: unknown,
      afterWrite?: (entry: AuditEntry<B>) => Promise<void>,
    ) =>
      guarded('Cannot append to', async () => {
        const id = await ensureChain();
        return db.transaction().execute(async (trx) => {
          // Lock first, then read the head in a statement of its own: a join locked FOR UPDATE would,
          // after waiting for another host's append, re-check the moved chain row against the
          // entry row it read before the wait (PostgreSQL's EvalPlanQual), and miss the new head.
          const locked = await sql<{ seq: number }>`
            select seq from safe_run_evidence.chains where chain_id = ${id} for update`.execute(trx);
          if (!locked.rows[0]) throw new Error('the chain row is missing');
          const { rows } = await sql<{ seq: number; line: string | null; now: Date }>`
            select c.seq, e.line, pg_catalog.clock_timestamp() as now
              from safe_run_evidence.chains c
              left join safe_run_evidence.entries e on e.chain_id = c.chain_id and e.seq = c.seq
             where c.chain_id = ${id}`.execute(trx);
          const row = rows[0];
          if (!row) throw new Error('the chain row is missing');
          const head = Number(row.seq) > 0 ? headOf(row.line, Number(row.seq), where) : null;
          const { entry, line, genesisKey } = await sign(head, row.now);
          if (genesisKey) await insertKey(trx, genesisKey);
          await sql`
            with added as (
              insert into safe_run_evidence.entries (chain_id, seq, ts, kind, run_id, key_id, hash, line)
              values (${id}, ${entry.seq}, ${entry.ts}::timestamptz, ${entry.kind}, ${entry.runId ?? null}, ${entry.keyId}, ${entry.hash}, ${line})
            )
            update safe_run_evidence.chains
               set seq = ${entry.seq}, hash = ${entry.hash}, log_id = coalesce(log_id, ${entry.seq === 1 ? entry.hash : null}::text),
                   updated_at = pg_catalog.clock_timestamp()
             where chain_id = ${id}`.execute(trx);
          await afterWrite?.(entry);
          return entry;
        });
      }),
    publishedKeys: () =>
      guarded('Cannot read the public keys of', async () => {
        await prepare();
        const { rows } = await sql<{ key_id: string; public_key: string }>`
          select key_id, public_key from safe_run_evidence.keys order by key_id`.execute(db);
        return publicKeySet(rows);
      }),
    anchor: () => anchor,
    importLines: (lines, keys) =>
      guarded('Cannot import into', async () => {
        const id = await ensureChain();
        for (const key of keys) await insertKey(db, key);
        return db.transaction().execute(async (trx) => {
          const { rows } = await sql<{ seq: number }>`
            select seq from safe_run_evidence.chains where chain_id = ${id} for update`.execute(trx);
          const seq = Number(rows[0]?.seq ?? 0);
          if (seq > 0)
            throw usageError(
              `${where} already holds ${seq} entries for this database; an import would fork its chain.`,
              'Import into an evidence database (or for a database) that has no chain yet; `safe-run evidence export` saves what the store holds.',
            );
          let last: AuditEntry | null = null;
          for (const line of lines) {
            const entry = parseEntryLine(line);
            await sql`insert into safe_run_evidence.entries (chain_id, seq, ts, kind, run_id, key_id, hash, line)
              values (${id}, ${entry.seq}, ${entry.ts}::timestamptz, ${entry.kind}, ${entry.runId ?? null}, ${entry.keyId}, ${entry.hash}, ${line})`.execute(
              trx,
            );
            last = entry;
          }
          if (last) {
            const logId = parseEntryLine(lines[0]!).hash;
            await sql`update safe_run_evidence.chains set seq = ${last.seq}, hash = ${last.hash}, log_id = ${logId},
                      updated_at = pg_catalog.clock_timestamp() where chain_id = ${id}`.execute(trx);
          }
          return lines.length;
        });
      }),
  };
}

async function insertKey(db: EvidenceDb, key: KeyObject): Promise<void> {
  const pem = key.export({ format: 'pem', type: 'spki' }).toString();
  await sql`insert into safe_run_evidence.keys (key_id, public_key) values (${keyIdOf(key)}, ${pem}) on conflict do nothing`.execute(db);
}

/** The head row's line, parsed; a missing or damaged head is refused like a damaged file tail. */
function headOf(line: string | null, seq: number, where: string): AuditEntry {
  const refuse = (why: string) =>
    new SafeRunError(
      `${where}: the chain head is entry ${seq}, but ${why}; refusing to append after it.`,
      ExitCode.auditFailed,
      'Run `safe-run verify` to find out what happened to the chain before writing to it again.',
    );
  if (line === null) throw refuse('that entry is missing');
  try {
    const entry = parseEntryLine(line);
    if (entry.seq !== seq) throw refuse(`the row holds entry ${entry.seq}`);
    return entry;
  } catch (error) {
    if (error instanceof MalformedEntryError) throw refuse(`it is not an audit entry (${error.message})`);
    throw error;
  }
}

function publicKeySet(rows: readonly { key_id: string; public_key: string }[]): PublicKeySet {
  const keys = new Map<string, KeyObject>();
  const problems: string[] = [];
  for (const row of rows) {
    try {
      const key = createPublicKey(row.public_key);
      if (key.asymmetricKeyType !== 'ed25519') throw new Error(`a ${key.asymmetricKeyType} key, not Ed25519`);
      const keyId = keyIdOf(key);
      if (keyId !== row.key_id) problems.push(`safe_run_evidence.keys row ${row.key_id} holds key ${keyId} (the content counts)`);
      keys.set(keyId, key);
    } catch (error) {
      problems.push(`safe_run_evidence.keys row ${row.key_id} is not a usable public key: ${errorMessage(error)}`);
    }
  }
  return { keys, problems };
}

/** The evidence must outlive the target: a store inside the target's own database would go with a DROP DATABASE. */
async function refuseTargetItself(db: EvidenceDb, target: ChainTarget, where: string): Promise<void> {
  const own = await readChainTarget(db, { optional: true });
  if (own && own.systemIdentifier === target.systemIdentifier && own.databaseName === target.databaseName) {
    throw usageError(
      `evidence.store names the target database itself (${where}); its evidence would be lost with a DROP DATABASE of it.`,
      'Point "evidence.store" (or SAFE_RUN_EVIDENCE_STORE) at a dedicated evidence database, e.g. postgres://safe_run_evidence@evidence-host/safe_run_evidence, or use "file".',
    );
  }
}

/**
 * The chain's key for the database `db` is connected to. pg_control_system() is often
 * revoked from ordinary roles; the target must grant it (the chain needs a stable key), the
 * evidence database need not (the own-database refusal is then skipped).
 */
export async function readChainTarget(
  db: QueryExecutorProvider,
  options: { readonly optional?: boolean } = {},
): Promise<ChainTarget | null> {
  try {
    const { rows } = await sql<{ id: string; name: string }>`
      select system_identifier::text as id, pg_catalog.current_database() as name from pg_catalog.pg_control_system()`.execute(db);
    const row = rows[0];
    return row ? { systemIdentifier: row.id, databaseName: row.name } : null;
  } catch (error) {
    if (options.optional) return null;
    throw usageError(
      `Cannot read the target's system identifier (pg_control_system()): ${errorMessage(error)}. A shared evidence store keys each database's chain by it.`,
      'As a superuser on the target: GRANT EXECUTE ON FUNCTION pg_catalog.pg_control_system() TO <the role safe-run logs in as>.',
    );
  }
}

/**
 * Exit 5 whatever went wrong with the store: no entry, no commit (the run stops or rolls
 * back as with an unwritable audit.jsonl). The message never carries the URL's password.
 */
function storeFailure(what: string, where: string, error: unknown): SafeRunError {
  if (error instanceof SafeRunError) return error;
  const reason = errorMessage(error).replace(/:\/\/[^@\s]*@/g, '://***@');
  return new SafeRunError(
    `${what} the evidence store ${where}: ${reason}`,
    ExitCode.auditFailed,
    'Check that the evidence database is up and that this role may select and insert in schema safe_run_evidence (`safe-run doctor`), then retry; nothing commits without its evidence.',
    { cause: error },
  );
}
