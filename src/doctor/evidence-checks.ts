import { existsSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import path from 'node:path';
import { databaseAnchor } from '../audit/anchor.js';
import { auditFailure } from '../audit/jsonl.js';
import { evidenceStore } from '../audit/store.js';
import type { VerifyResult } from '../audit/types.js';
import { verifyLog } from '../audit/verify.js';
import type { Db } from '../db/connection.js';
import { ExitCode } from '../errors.js';
import { probeWritable } from '../run/preflight.js';
import { fail, failFrom, pass, warn, type DoctorCheck } from './check.js';

/** Below this, a full backup of a mid-sized database may not fit. */
export const LOW_DISK_BYTES = 1024 ** 3;

/** Writable means what a run does (probeWritable): create, write, fsync, remove. */
export async function checkEvidenceDir(evidenceDir: string): Promise<DoctorCheck> {
  const existed = existsSync(evidenceDir);
  try {
    await probeWritable(evidenceDir);
  } catch (error) {
    return failFrom('evidence-dir', auditFailure(`Cannot write to the evidence directory ${evidenceDir}`, error), ExitCode.auditFailed, '');
  }
  return pass('evidence-dir', `${evidenceDir} is writable${existed ? '' : ' (created it)'}`);
}

/** verifyLog against the chain head anchored in the database when the database answered. */
export async function checkAuditLog(evidenceDir: string, db: Db | null): Promise<DoctorCheck> {
  const store = evidenceStore(evidenceDir);
  const file = store.where;
  if (store.kind === 'file' && !existsSync(file)) return pass('audit-log', `${file}: no entries yet`);
  let result: VerifyResult;
  try {
    result = await verifyLog({ evidenceDir, anchor: db ? databaseAnchor(db) : null });
  } catch (error) {
    return failFrom('audit-log', error, ExitCode.auditFailed, 'Check the evidence directory, then run `safe-run verify`.');
  }
  if (!result.ok && result.firstBad) {
    const bad = result.firstBad;
    return fail(
      'audit-log',
      `${file}: entry ${bad.seq} (line ${bad.line}) is bad: ${bad.reason}: ${bad.detail}`,
      'Run `safe-run verify` for the details, and find out what happened before any new run appends to this log.',
      ExitCode.auditFailed,
    );
  }
  const head = result.head ? `head #${result.head.seq} ${result.head.hash.slice(0, 16)}…` : 'empty';
  const anchor = result.anchor
    ? `, matches the database anchor #${result.anchor.seq}`
    : db
      ? ', no database anchor yet'
      : ', database anchor not checked';
  const notes = result.warnings.length ? ` (note: ${result.warnings.join('; ')})` : '';
  return pass('audit-log', `${result.entries} entries verify, ${head}${anchor}${notes}`);
}

/** Free space where backups land: the evidence directory, or its nearest existing parent. */
export async function checkDiskSpace(evidenceDir: string): Promise<DoctorCheck> {
  let dir = evidenceDir;
  while (!existsSync(dir) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  let free: number;
  try {
    const fs = await statfs(dir);
    free = fs.bavail * fs.bsize;
  } catch (error) {
    return failFrom('disk-space', auditFailure(`Cannot read the free space of ${dir}`, error), ExitCode.auditFailed, '');
  }
  const text = `${formatGiB(free)} free in ${dir}`;
  if (free < LOW_DISK_BYTES) {
    return warn(
      'disk-space',
      `${text} (below ${formatGiB(LOW_DISK_BYTES)})`,
      'Free space there or move "evidenceDir": a backup that does not fit fails the run (exit 4).',
    );
  }
  return pass('disk-space', text);
}

function formatGiB(bytes: number): string {
  return bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(1)} GiB` : `${Math.round(bytes / 1024 ** 2)} MiB`;
}
