import type { Config } from '../config/config.js';
import type { TargetHandle } from '../db/target.js';
import { parseDatabaseUrl, redactUrl } from '../db/url.js';
import { errorMessage, ExitCode, SafeRunError, usageError } from '../errors.js';
import type { Logger } from '../logger.js';
import { databaseAnchor, evidenceDirIdentity, type AnchoredLog, type ChainAnchor } from './anchor.js';
import { parseEntryLine } from './entry.js';
import { readFirstLine, readLastLine } from './jsonl.js';
import { auditLogPath } from './read.js';
import type { VerifyProblem } from './types.js';

/**
 * An emptied, removed or cut audit.jsonl is a perfectly valid (shorter) chain, and every
 * evidence command would happily report from it. The database anchor remembers how far
 * each log got and from which evidence directory it was written; a log behind that is
 * evidence destroyed, so `verify`, `check`, `log`, `blame`, `show` and `report` refuse to
 * read it (exit 5) before doing anything else.
 */
export class LogBehindAnchorError extends SafeRunError {
  constructor(readonly problem: VerifyProblem) {
    super(
      `log-behind-anchor: ${problem.detail}`,
      ExitCode.auditFailed,
      'Keep the evidence directory as it is, restore audit.jsonl from a backup of it, and find out who cut or removed it. `safe-run verify` shows what is missing.',
    );
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

/** The problem, or null when the log reaches every head anchored for it and for this directory. */
export function behindAnchor(file: string, here: string, ends: LogEnds, anchored: readonly AnchoredLog[]): VerifyProblem | null {
  const at = (seq: number, detail: string): VerifyProblem => ({ seq, line: ends.lines + 1, reason: 'log-behind-anchor', detail });
  const mine = anchored.find((a) => a.logId === ends.logId);
  if (mine && mine.seq > ends.headSeq) {
    return at(
      ends.headSeq + 1,
      `the database anchors this log (id ${short(mine.logId)}) at entry ${mine.seq} (${mine.updatedAt}), but ${file} ends at entry ${ends.headSeq}: the log was cut`,
    );
  }
  // A row written before the evidence_dir column existed may be this directory's: only an absent log blames it.
  const lost = anchored.filter(
    (a) => a.logId !== ends.logId && (a.evidenceDir === here || (a.evidenceDir === null && ends.logId === null)),
  );
  if (!lost.length) return null;
  const heads = lost.map((a) => `log ${short(a.logId)} at entry ${a.seq} (${a.updatedAt})`).join(', ');
  const what = ends.logId === null ? `${file} is missing or empty` : `${file} is another log (id ${short(ends.logId)}): it was replaced`;
  return at(1, `the database anchors ${heads} written from this evidence directory, but ${what}`);
}

export type AnchorStanding =
  | { readonly status: 'ok'; readonly anchored: readonly AnchoredLog[] }
  | { readonly status: 'behind'; readonly problem: VerifyProblem }
  | { readonly status: 'nothing'; readonly error: SafeRunError };

/** Compares the log's two ends with every head the anchor holds. Never reads the whole log. */
export async function standAgainstAnchor(
  evidenceDir: string,
  anchor: ChainAnchor | null,
  where: string,
  log: Logger,
): Promise<AnchorStanding> {
  const file = auditLogPath(evidenceDir);
  const ends = await readLogEnds(file);
  let anchored: readonly AnchoredLog[] = [];
  let checked = anchor !== null;
  if (anchor?.list) {
    try {
      anchored = await anchor.list();
    } catch (error) {
      checked = false;
      log.warn('Could not read the chain heads anchored in the database; the log is read without that check', {
        error: errorMessage(error),
      });
    }
  }
  const problem = behindAnchor(file, evidenceDirIdentity(evidenceDir), ends, anchored);
  if (problem) return { status: 'behind', problem };
  if (ends.logId === null && !anchored.some((a) => a.evidenceDir === evidenceDirIdentity(evidenceDir))) {
    const db = checked ? `no chain head for it in ${where}` : `${where} was not checked for a chain head`;
    return {
      status: 'nothing',
      error: usageError(
        `No audit log at ${file} and ${db}: there is no evidence to read.`,
        'Check "evidenceDir" (or SAFE_RUN_EVIDENCE_DIR) and --db; a guarded run or `safe-run snapshot` starts the log.',
      ),
    };
  }
  return { status: 'ok', anchored };
}

/** The shared setup step of the evidence commands: throws exit 5 (log behind its anchor) or exit 2 (nothing at all). */
export async function assertLogReachesAnchor(config: Config, target: TargetHandle, log: Logger): Promise<void> {
  const standing = await withConfigAnchor(config, target, (anchor, where) => standAgainstAnchor(config.evidenceDir, anchor, where, log));
  if (standing.status === 'behind') throw new LogBehindAnchorError(standing.problem);
  if (standing.status === 'nothing') throw standing.error;
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
