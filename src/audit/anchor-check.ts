import type { Config } from '../config/config.js';
import type { TargetHandle } from '../db/target.js';
import { parseDatabaseUrl, redactUrl } from '../db/url.js';
import { errorMessage, ExitCode, SafeRunError, usageError } from '../errors.js';
import type { Logger } from '../logger.js';
import { databaseAnchor, evidenceDirIdentity, type AnchoredLog, type ChainAnchor } from './anchor.js';
import { parseEntryLine } from './entry.js';
import { readFirstLine, readLastLine } from './jsonl.js';
import { auditLogPath } from './read.js';
import { evidenceStore, type EvidenceStore } from './store.js';
import type { VerifyProblem } from './types.js';

/**
 * An emptied, removed or cut audit.jsonl is a perfectly valid (shorter) chain, and every
 * evidence command would happily report from it. The database anchor remembers how far
 * each log got and from which evidence directory it was written; a log behind that is
 * evidence destroyed, so `verify`, `check`, `log`, `blame`, `show` and `report` refuse to
 * read it (exit 5) before doing anything else.
 */
export class LogBehindAnchorError extends SafeRunError {
  constructor(
    readonly problem: VerifyProblem,
    hint = 'Keep the evidence directory as it is, restore audit.jsonl from a backup of it, and find out who cut or removed it. `safe-run verify` shows what is missing.',
  ) {
    super(`log-behind-anchor: ${problem.detail}`, ExitCode.auditFailed, hint);
    this.name = 'LogBehindAnchorError';
  }
}

/** What the log file says about itself: its id (entry 1's hash) and the seq of its last complete entry. */
interface LogEnds {
  readonly logId: string | null;
  readonly headSeq: number;
  readonly lines: number;
}

async function readLogEnds(file: string): Promise<LogEnds> {
  const first = await readFirstLine(file);
  const last = await readLastLine(file);
  const parse = (text: string | null | undefined) => {
    try {
      return text ? parseEntryLine(text) : null;
    } catch {
      return null; // a damaged line is verify's to name; this check only compares positions
    }
  };
  const head = parse(last?.complete ? last.text : null);
  return { logId: parse(first)?.hash ?? null, headSeq: head?.seq ?? 0, lines: head?.seq ?? 0 };
}

/**
 * The problem, or null when the log is the one this database anchors and reaches its head.
 * One log per database: a log the anchor does not know, while it knows another, is a fork
 * (or the wrong evidence directory) whatever its path; the path is only where it was last
 * written, a hint, since a shared store is written from several hosts.
 */
export function behindAnchor(file: string, here: string, ends: LogEnds, anchored: readonly AnchoredLog[]): VerifyProblem | null {
  const at = (seq: number, detail: string): VerifyProblem => ({ seq, line: ends.lines + 1, reason: 'log-behind-anchor', detail });
  const mine = anchored.find((a) => a.logId === ends.logId);
  if (mine && mine.seq > ends.headSeq) {
    return at(
      ends.headSeq + 1,
      `the database anchors this log (id ${short(mine.logId)}) at entry ${mine.seq} (${mine.updatedAt}), but ${file} ends at entry ${ends.headSeq}: the log was cut`,
    );
  }
  if (mine || !anchored.length) return null;
  const heads = anchored.map(describeAnchored).join('; ');
  if (ends.logId === null) {
    const how = anchored.some((a) => a.evidenceDir === here) ? 'it was removed or emptied' : 'this is not where that log is kept';
    return at(1, `the database anchors ${heads}, but ${file} is missing or empty: ${how}`);
  }
  const how = anchored.some((a) => a.evidenceDir === here) ? 'it was replaced' : 'it is another log than the one kept for this database';
  return at(1, `${file} is log ${short(ends.logId)}, but the database anchors ${heads}: ${how}`);
}

/** "log 1a2b… at entry 122 (ts), last written at host:/path" */
export function describeAnchored(a: AnchoredLog): string {
  return `log ${short(a.logId)} at entry ${a.seq} (${a.updatedAt}), last written at ${a.evidenceDir ?? 'an unrecorded place'}`;
}

export type AnchorStanding =
  | { readonly status: 'ok'; readonly anchored: readonly AnchoredLog[] }
  | { readonly status: 'behind'; readonly problem: VerifyProblem; readonly hint?: string }
  | { readonly status: 'nothing'; readonly error: SafeRunError };

/** Compares the log's two ends with every head the anchor holds. Never reads the whole log. */
export async function standAgainstAnchor(
  evidenceDir: string,
  anchor: ChainAnchor | null,
  where: string,
  log: Logger,
  configSearch: string = '',
): Promise<AnchorStanding> {
  const store = evidenceStore(evidenceDir);
  if (store.kind !== 'file') return standInStore(store, configSearch);
  const file = auditLogPath(evidenceDir);
  const listing = anchor?.list?.().then(
    (heads) => ({ heads }),
    (error: unknown) => ({ error }),
  );
  const ends = await readLogEnds(file).finally(() => listing);
  let anchored: readonly AnchoredLog[] = [];
  let checked = anchor !== null;
  const listed = await listing;
  if (listed && 'error' in listed) {
    checked = false;
    log.warn('Could not read the chain heads anchored in the database; the log is read without that check', {
      error: errorMessage(listed.error),
    });
  } else if (listed) anchored = listed.heads;
  const here = evidenceDirIdentity(evidenceDir);
  const problem = behindAnchor(file, here, ends, anchored);
  if (problem) {
    const elsewhere = ends.logId === null ? await keptElsewhere(here, anchored) : null;
    return elsewhere ? { status: 'behind', problem, hint: whereItIsKept(elsewhere) } : { status: 'behind', problem };
  }
  if (ends.logId === null) {
    const db = checked ? `no chain head for it in ${where}` : `${where} was not checked for a chain head`;
    return {
      status: 'nothing',
      error: usageError(
        `No audit log at ${file} and ${db}: there is no evidence to read.${configSearch}`,
        'Run it where the project keeps its safe-run.config.* (or pass --config, or set SAFE_RUN_CONFIG); `safe-run init` makes one, and a guarded run or `safe-run snapshot` starts the log.',
      ),
    };
  }
  const mine = anchored.find((a) => a.logId === ends.logId);
  if (mine?.evidenceDir && mine.evidenceDir !== here) {
    log.info(`This log was last written at ${mine.evidenceDir}; reading it at ${here}`, { logId: short(mine.logId) });
  }
  return { status: 'ok', anchored };
}

/**
 * A shared store is its own anchor (verify holds the chain to its head); what is left to say
 * here is only whether there is any evidence for this database at all.
 */
async function standInStore(store: EvidenceStore, configSearch: string): Promise<AnchorStanding> {
  if (await store.logId()) return { status: 'ok', anchored: [] };
  return {
    status: 'nothing',
    error: usageError(
      `No evidence for this database in ${store.where}: there is nothing to read.${configSearch}`,
      'Check that --db (or DATABASE_URL) names the database you mean; a guarded run or `safe-run snapshot` starts its chain, and `safe-run evidence import` loads an existing audit.jsonl.',
    ),
  };
}

/**
 * Nothing here, while the log this database anchors is intact in another evidence directory
 * (on this host, checked: it reaches its anchored head) or on another host (not checkable
 * from here). Still exit 5, since no evidence is readable here, but most likely an operator
 * standing in the wrong directory: the next step points at where the log is, not at a backup.
 */
async function keptElsewhere(here: string, anchored: readonly AnchoredLog[]): Promise<AnchoredLog | null> {
  const host = here.slice(0, here.indexOf(':') + 1);
  for (const a of anchored) {
    if (!a.evidenceDir || a.evidenceDir === here) continue;
    if (!a.evidenceDir.startsWith(host)) return a;
    const there = await readLogEnds(auditLogPath(a.evidenceDir.slice(host.length)));
    if (there.logId === a.logId && there.headSeq >= a.seq) return a;
  }
  return null;
}

function whereItIsKept(kept: AnchoredLog): string {
  const [host, ...rest] = (kept.evidenceDir ?? '').split(':');
  const dir = rest.join(':');
  return host === evidenceDirIdentity('.').split(':')[0]
    ? `The log is intact in ${dir}: run from the project that keeps it (its safe-run.config.*), or pass --config, or set SAFE_RUN_EVIDENCE_DIR=${dir}.`
    : `The log is kept on ${host} in ${dir}: read it there, or copy that evidence directory here and set SAFE_RUN_EVIDENCE_DIR to the copy.`;
}

/** The shared setup step of the evidence commands: throws exit 5 (log behind its anchor) or exit 2 (nothing at all). */
export async function assertLogReachesAnchor(config: Config, target: TargetHandle, log: Logger): Promise<void> {
  const standing = await withConfigAnchor(config, target, (anchor, where) =>
    standAgainstAnchor(config.evidenceDir, anchor, where, log, whereConfigWasSought(config)),
  );
  if (standing.status === 'behind') throw new LogBehindAnchorError(standing.problem, standing.hint);
  if (standing.status === 'nothing') throw standing.error;
}

/** " Config: FILE." or " No safe-run.config.* in DIR or its parents." for the nothing-to-read message. */
export function whereConfigWasSought(config: Pick<Config, 'file' | 'searched'>): string {
  if (config.file) return ` Config: ${config.file}.`;
  const first = config.searched?.[0];
  return first ? ` No safe-run.config.* in ${first} or its parents (and no --config or SAFE_RUN_CONFIG).` : '';
}

/**
 * A writer (run, snapshot, exec, restore) about to append: a log the database does not know
 * while it anchors another, or a log cut behind its anchor, would fork the evidence. An empty
 * log with no anchor at all is simply the start of this database's log.
 */
export async function assertWritableAgainstAnchor(evidenceDir: string, anchor: ChainAnchor, log: Logger): Promise<void> {
  const standing = await standAgainstAnchor(evidenceDir, anchor, 'the database', log);
  if (standing.status === 'behind') throw new LogBehindAnchorError(standing.problem, standing.hint);
}

/**
 * The anchor in the command's target database (the handle the command goes on using); an
 * unreachable database is a warning, raised by whatever reads the anchor first.
 */
export async function withConfigAnchor<T>(
  config: Config,
  target: TargetHandle,
  fn: (anchor: ChainAnchor | null, where: string) => Promise<T>,
): Promise<T> {
  if (!config.databaseUrl) return fn(null, 'no database (none configured: --db, "database" or DATABASE_URL)');
  const url = parseDatabaseUrl(config.databaseUrl);
  return fn(anchorOn(target), `the database ${redactUrl(url)}`);
}

/**
 * An anchor that connects on first use. A database that does not answer fails every read
 * (the handle keeps the failed attempt), which each reader reports as a warning: the file can
 * still be checked without it.
 */
function anchorOn(target: TargetHandle): ChainAnchor {
  const anchor = async (): Promise<ChainAnchor> => databaseAnchor((await target.open()).db);
  return {
    record: async (logId, seq, hash, pin) => (await anchor()).record(logId, seq, hash, pin),
    read: async (logId) => (await anchor()).read(logId),
    list: async () => (await (await anchor()).list?.()) ?? [],
  };
}

const short = (hash: string): string => `${hash.slice(0, 16)}…`;
