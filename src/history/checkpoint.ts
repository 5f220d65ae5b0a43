import { createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/config.js';
import { canonicalJson } from '../audit/canonical.js';
import { checkEntryHash, parseEntryLine } from '../audit/entry.js';
import { loadSigningKey } from '../audit/keys.js';
import { EVIDENCE_DIR_MODE, EVIDENCE_FILE_MODE } from '../audit/modes.js';
import { evidenceStore, type StorePosition } from '../audit/store.js';
import { errorMessage } from '../errors.js';
import type { IntactSeals, SealRecord } from '../ledger/findings.js';
import type { Logger } from '../logger.js';
import type { AckBody, CounterDelta, TableKey } from '../records/index.js';
import type { Observation } from './observations.js';
import type { OpenFinding } from './open-findings.js';
import type { RunSummary } from './runs.js';

/**
 * check compares every pair of consecutive observations, so without this it reads and parses
 * the whole log on every call: a day of cron snapshots is 288 entries, a month 8,640, and
 * check's cost grew with them. The checkpoint is the scan's state after some entry N (open
 * findings, acknowledgements, the last observation, open runs), so the next check reads only
 * the entries after N.
 *
 * It is a cache, not evidence, and it must never hide a finding:
 * - It is a pure function of the log's first N entries (and the critical tables, and this
 *   code), so an older checkpoint is only slower, never wrong. Entry N must still be in the
 *   log, at the same place (byte offset in audit.jsonl, seq in an evidence database), with
 *   the same hash; a rewritten or cut log is scanned whole.
 * - It carries an HMAC under a key derived from the signing key, so only a holder of that key
 *   can write one that is used. Without the key (a read-only host), check scans everything.
 * - Bump SCAN_FORMAT whenever what a finding is changes (snapshot/diff*.ts, open-findings.ts,
 *   runs.ts): a checkpoint of another format or another safe-run version is ignored.
 */
export const SCAN_FORMAT = 1;

/** The state scanFindings carries from one entry to the next, as JSON. */
export interface ScanState {
  readonly found: readonly OpenFinding[];
  readonly acked: readonly (readonly [string, AckBody])[];
  readonly previous: Observation | null;
  readonly explained: readonly (readonly [TableKey, CounterDelta])[];
  /** This database's runs that may still change the findings: not closed by a run.post or a commit failure. */
  readonly runs: readonly RunSummary[];
  /** This database's runs that are closed for good: their later outcomes still count as explained changes. */
  readonly closedRuns: readonly string[];
  readonly entriesRead: number;
  /** Entries whose body did not parse, so a resumed scan warns about them as a whole one does. */
  readonly skipped: readonly SkippedNote[];
  readonly seals: readonly SealRecord[];
}

export interface SkippedNote {
  readonly seq: number;
  readonly kind: string;
  readonly reason: 'unknown-kind' | 'bad-body';
  readonly detail: string;
}

/** The last entry a scan read, and its hash: where the next one resumes. */
export interface Through extends StorePosition {
  readonly hash: string;
}

/** Who may read and write checkpoints for one database: null when check cannot use them. */
export interface CheckpointScope {
  /** The scan's state (`<name>.scan`). */
  readonly file: string;
  /** The ledger seals check found intact (`<name>.ledger`, ledger/verified.ts). */
  readonly ledgerFile: string;
  readonly evidenceDir: string;
  readonly databaseKey: string;
  readonly critical: string;
  readonly version: string;
  readonly macKey: Buffer;
}

interface Stored {
  readonly format: number;
  readonly version: string;
  readonly databaseKey: string;
  readonly critical: string;
  readonly through: Through;
  readonly state: ScanState;
}

export interface Resumed {
  readonly through: Through;
  readonly state: ScanState;
}

/** The scope for this database, or null (with the reason at debug level) when there is no usable signing key. */
export async function checkpointScope(
  config: Pick<Config, 'evidenceDir' | 'signingKey' | 'criticalTables'>,
  databaseKey: string,
  version: string,
  log: Pick<Logger, 'debug'>,
): Promise<CheckpointScope | null> {
  try {
    const key = await loadSigningKey({ signingKeyPath: config.signingKey, evidenceDir: config.evidenceDir });
    const secret = Buffer.from(key.privateKey.export({ format: 'jwk' }).d ?? '', 'base64url');
    const macKey = Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), 'safe-run check checkpoint', 32));
    const name = createHash('sha256').update(databaseKey).digest('hex').slice(0, 16);
    // One name per database and signing key: two hosts sharing a directory do not overwrite each other's.
    const base = path.join(config.evidenceDir, 'checkpoints', `${name}-${key.keyId}`);
    return {
      file: `${base}.scan`,
      ledgerFile: `${base}.ledger`,
      evidenceDir: config.evidenceDir,
      databaseKey,
      critical: createHash('sha256').update(canonicalJson(config.criticalTables)).digest('hex'),
      version,
      macKey,
    };
  } catch (error) {
    log.debug('check reads the whole log: no checkpoint without the signing key', { error: errorMessage(error) });
    return null;
  }
}

/** The stored state, or null when there is none or it does not hold for this log, these critical tables and this code. */
export async function loadCheckpoint(scope: CheckpointScope, log: Pick<Logger, 'debug'>): Promise<Resumed | null> {
  const stored = await readAuthenticated<Stored>(scope.file, scope.macKey, log);
  if (!stored) return null;
  const why =
    stored.format !== SCAN_FORMAT || stored.version !== scope.version
      ? 'written by another safe-run'
      : stored.databaseKey !== scope.databaseKey
        ? 'another database'
        : stored.critical !== scope.critical
          ? 'the critical tables changed'
          : await anchorMismatch(scope.evidenceDir, stored.through);
  if (why) {
    log.debug('check checkpoint ignored', { file: scope.file, why });
    return null;
  }
  return { through: stored.through, state: stored.state };
}

export async function saveCheckpoint(
  scope: CheckpointScope,
  through: Through,
  state: ScanState,
  log: Pick<Logger, 'debug'>,
): Promise<void> {
  const stored: Stored = {
    format: SCAN_FORMAT,
    version: scope.version,
    databaseKey: scope.databaseKey,
    critical: scope.critical,
    through,
    state,
  };
  await writeAuthenticated(scope.file, scope.macKey, stored, log);
}

interface StoredSeals {
  readonly format: number;
  readonly databaseKey: string;
  readonly stamps: readonly (readonly [number, string])[];
}

/** The ledger seals the last check found intact, by seq, with their stamps (ledger/verified.ts); empty without a scope. */
export async function loadIntactSeals(scope: CheckpointScope | null, log: Pick<Logger, 'debug'>): Promise<Map<number, string>> {
  const stored = scope && (await readAuthenticated<StoredSeals>(scope.ledgerFile, scope.macKey, log));
  if (!stored || stored.format !== SCAN_FORMAT || stored.databaseKey !== scope.databaseKey) return new Map();
  return new Map(stored.stamps);
}

export async function saveIntactSeals(scope: CheckpointScope | null, intact: IntactSeals, log: Pick<Logger, 'debug'>): Promise<void> {
  if (!scope) return;
  const stored: StoredSeals = { format: SCAN_FORMAT, databaseKey: scope.databaseKey, stamps: [...intact] };
  await writeAuthenticated(scope.ledgerFile, scope.macKey, stored, log);
}

/** A JSON file this signing key's holder wrote, or null: none, unreadable, or its MAC does not match. */
export async function readAuthenticated<T>(file: string, macKey: Buffer, log: Pick<Logger, 'debug'>): Promise<T | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return null;
  }
  const nl = text.indexOf('\n');
  const body = text.slice(nl + 1);
  if (nl < 0 || !macMatches(macKey, body, text.slice(0, nl))) {
    log.debug('checkpoint ignored: its MAC does not match', { file });
    return null;
  }
  return JSON.parse(body) as T;
}

/** Written whole and renamed into place; a checkpoint that cannot be written costs the next check time, nothing else. */
export async function writeAuthenticated(file: string, macKey: Buffer, value: unknown, log: Pick<Logger, 'debug'>): Promise<void> {
  const body = JSON.stringify(value);
  const temporary = `${file}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  try {
    await mkdir(path.dirname(file), { recursive: true, mode: EVIDENCE_DIR_MODE });
    await writeFile(temporary, `${mac(macKey, body)}\n${body}`, { mode: EVIDENCE_FILE_MODE });
    await rename(temporary, file);
  } catch (error) {
    await unlink(temporary).catch(() => {});
    log.debug('checkpoint not written', { file, error: errorMessage(error) });
  }
}

function mac(macKey: Buffer, body: string): string {
  return createHmac('sha256', macKey).update(body).digest('hex');
}

function macMatches(macKey: Buffer, body: string, stored: string): boolean {
  const expected = Buffer.from(mac(macKey, body), 'hex');
  const actual = Buffer.from(stored, 'hex');
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** Why entry `through` is not where the checkpoint says, or null when it is, byte for byte. */
async function anchorMismatch(evidenceDir: string, through: Through): Promise<string | null> {
  try {
    const line = await evidenceStore(evidenceDir).lineAt(through);
    if (line === null) return `entry ${through.seq} is no longer there`;
    const entry = parseEntryLine(line);
    if (entry.seq !== through.seq || entry.hash !== through.hash || !checkEntryHash(line, entry).ok) return `entry ${through.seq} changed`;
    return null;
  } catch (error) {
    return `entry ${through.seq} cannot be read back: ${errorMessage(error)}`;
  }
}
