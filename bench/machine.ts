import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { sql } from 'kysely';
import { createDb } from '../src/db/connection.js';

/** What the figures were measured on; a ratio means little without the machine under it. */
export interface Machine {
  readonly nproc: number;
  readonly memoryGb: number;
  readonly cpuModel: string;
  readonly postgres: string;
  readonly pgDump: string;
  readonly node: string;
  readonly loadAverageAtStart: readonly number[];
}

export async function describeMachine(serverUrl: string): Promise<Machine> {
  const db = createDb(serverUrl, { maxConnections: 1 });
  let postgres = 'unknown';
  try {
    postgres = (await sql<{ v: string }>`select version() as v`.execute(db)).rows[0]!.v;
  } finally {
    await db.destroy();
  }
  const pgDump = await execa('pg_dump', ['--version'], { reject: false }).then((r) => String(r.stdout).trim() || 'not on PATH');
  return {
    nproc: os.availableParallelism(),
    memoryGb: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    cpuModel: cpuModel(),
    postgres,
    pgDump,
    node: process.version,
    loadAverageAtStart: os.loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

function cpuModel(): string {
  try {
    return /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown';
  } catch {
    return os.cpus()[0]?.model ?? 'unknown';
  }
}
