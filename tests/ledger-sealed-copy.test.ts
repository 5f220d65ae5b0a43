import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readSealedCopy } from '../src/ledger/sealed-copy.js';
import type { LedgerSealBody, LedgerStatement } from '../src/records/index.js';

/**
 * The sealed-copy reader blame uses: a copy larger than one read block (lines cut at block
 * boundaries), read with and without the byte search, must give the same wanted lines; a
 * changed byte must give nothing but the problem. No database: the copy is a file.
 */
const statement = (id: number, table: string, operation: string): LedgerStatement => ({
  id,
  xid: String(1000 + id),
  statement_at: '2026-12-01T09:03:59.118158+00:00',
  recorded_at: '2026-12-01T09:03:59.12604+00:00',
  session_role: 'postgres',
  outer_role: null,
  application_name: 'writer',
  client_addr: null,
  backend_pid: 42,
  backend_start: null,
  table_schema: 'public',
  table_name: table,
  operation,
  object_identity: null,
  row_count: 1,
  // Lines of varied length, and the needles' words inside the text, where they must not match.
  statement: `update ${table} set note = '"table_name":"users" DELETE ${'x'.repeat(id % 997)}' where id = ${id}`,
  statement_fingerprint: null,
  rows_kept: 0,
  rows_not_kept: 0,
});

describe('reading a sealed ledger copy', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'safe-run-copy-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const write = (lines: readonly LedgerStatement[]): LedgerSealBody => {
    const text = lines.map((s) => JSON.stringify({ statement: s, hash: 'h', kept: 0 })).join('\n') + '\n';
    writeFileSync(path.join(dir, 'copy.jsonl'), text);
    return {
      database: 'db',
      databaseOid: 1,
      count: lines.length,
      hash: 'h',
      ids: lines.map((s) => s.id),
      keptRows: 0,
      file: 'copy.jsonl',
      fileSha256: createHash('sha256').update(text).digest('hex'),
      rowsFile: 'copy.rows.jsonl',
      rowsFileSha256: '',
    };
  };

  it('finds exactly the lines that name the table or the operation, across read blocks', async () => {
    const all = Array.from({ length: 12_000 }, (_, i) => {
      const id = i + 1;
      if (id % 101 === 0) return statement(id, 'users', 'UPDATE');
      if (id % 997 === 0) return statement(id, 'orders', 'DELETE');
      return statement(id, id % 2 ? 'u_keep' : 'Odd "T" \\x', 'UPDATE');
    });
    const body = write(all);
    const mentions = [
      ['table_name', 'users'],
      ['table_name', 'Odd "T" \\x'],
      ['operation', 'DELETE'],
    ] as const;
    const searched = await readSealedCopy(dir, body, mentions);
    const parsed = await readSealedCopy(dir, body);
    expect(searched.problem).toBeNull();
    expect(parsed.lines).toHaveLength(all.length);
    const wanted = parsed.lines
      .filter((l) => ['users', 'Odd "T" \\x'].includes(l.statement.table_name ?? '') || l.statement.operation === 'DELETE')
      .map((l) => l.statement.id);
    expect(wanted.length).toBeGreaterThan(6_000);
    expect(searched.lines.map((l) => l.statement.id)).toEqual(wanted);
  });

  it('gives no line of a copy that differs from its signed sha256, only the problem', async () => {
    const body = write([statement(1, 'users', 'DELETE')]);
    writeFileSync(path.join(dir, 'copy.jsonl'), `${JSON.stringify({ statement: statement(1, 'users', 'UPDATE'), hash: 'h', kept: 0 })}\n`);
    expect(await readSealedCopy(dir, body, [['table_name', 'users']])).toEqual({
      lines: [],
      problem: 'sealed copy copy.jsonl differs from its signed sha256',
    });
  });
});
