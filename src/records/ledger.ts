import { z } from '../zod.js';
import { TableKeySchema } from './table.js';

/**
 * The change ledger (src/ledger) as the audit log stores it: a `ledger.seal` entry per batch
 * of ledger rows copied into the evidence directory, and the guarded run's cross-check of
 * its own ledger statements against its measured changes.
 */
export const LedgerSealBodySchema = z
  .object({
    v: z.literal(1).optional(),
    /** The database key (as in snapshots): a recreated database has a new one. */
    database: z.string(),
    /** With the key: a ledger gone with its recreated database is lost, not tampered with. */
    databaseOid: z.number(),
    count: z.number().int(),
    /** sha256 over the rows' own hashes, in id order (see src/ledger/seal.ts). */
    hash: z.string(),
    ids: z.array(z.number().int()).readonly(),
    keptRows: z.number().int(),
    /** The copy, relative to the evidence directory, and its sha256. */
    file: z.string(),
    fileSha256: z.string(),
    /** The kept rows (JSON lines of ledger_id, side, row), and their sha256. */
    rowsFile: z.string(),
    rowsFileSha256: z.string(),
  })
  .readonly();
export type LedgerSealBody = z.infer<typeof LedgerSealBodySchema>;

/** One ledger row as sealed: the layout of safe_run.ledger, names as in the table. */
export const LedgerStatementSchema = z
  .object({
    id: z.number().int(),
    xid: z.string(),
    statement_at: z.string(),
    recorded_at: z.string(),
    session_role: z.string(),
    outer_role: z.string().nullable(),
    application_name: z.string().nullable(),
    client_addr: z.string().nullable(),
    backend_pid: z.number().int(),
    backend_start: z.string().nullable(),
    table_schema: z.string().nullable(),
    table_name: z.string().nullable(),
    operation: z.string(),
    object_identity: z.string().nullable(),
    row_count: z.number(),
    statement: z.string().nullable(),
    statement_fingerprint: z.string().nullable(),
    rows_kept: z.number(),
    rows_not_kept: z.number(),
  })
  .readonly();
export type LedgerStatement = z.infer<typeof LedgerStatementSchema>;

/** A guarded run's own statements as the ledger saw them, against what the run measured: two witnesses. */
export const LedgerCrossCheckSchema = z
  .object({
    statements: z.number().int(),
    keptRows: z.number().int(),
    /** Empty when the two agree. */
    disagreements: z.array(z.object({ table: TableKeySchema, detail: z.string() }).readonly()).readonly(),
  })
  .readonly();
export type LedgerCrossCheck = z.infer<typeof LedgerCrossCheckSchema>;
