import type { KeyObject } from 'node:crypto';
import { errorMessage } from '../errors.js';
import type { ChainAnchor } from './anchor.js';
import { checkEntryHash, MalformedEntryError, parseEntryLine, signatureValid } from './entry.js';
import { INTRODUCING_KINDS, Keyring } from './keyring.js';
import { parseRecord } from '../records/index.js';
import { evidenceStore, type EvidenceStore } from './store.js';
import { anchoredKeys, keyTrust, untrustedSigners, type KeyPins } from './trust.js';
import { GENESIS_PREV, type AuditEntry, type ChainHead, type VerifyProblem, type VerifyResult } from './types.js';

export interface VerifyOptions {
  readonly evidenceDir: string;
  readonly anchor?: ChainAnchor | null;
  readonly expectHead?: ChainHead;
  /**
   * 'every' (the default, and what `safe-run verify` does) checks each entry's signature.
   * 'head' checks every hash and link but only the signatures of entry 1, of each
   * key.rotate and of the last entry: the head's signature covers its hash, which covers
   * prev, and so on back to entry 1, so any change to an earlier entry still fails (as a
   * broken link or a bad head signature) at a fraction of the cost. For reports over long logs.
   */
  readonly signatures?: 'every' | 'head';
  /** Config `trustedKeys`: key fingerprints pinned outside the evidence directory (see trust.ts). */
  readonly trustedKeys?: readonly string[];
  /** Default: the store configured for evidenceDir. `evidence import` verifies a file elsewhere. */
  readonly store?: EvidenceStore;
}

/**
 * verifyChain: one pass over audit.jsonl in constant memory. Each entry is checked first
 * for itself (shape, hash, key, signature), then for its place (seq, prev), so the reason
 * given is the most specific one: a forged entry is `unknown-key`, a deleted one `seq-gap`.
 * It stops at the first bad entry; everything after it is untrusted anyway.
 */
export async function verifyLog(options: VerifyOptions): Promise<VerifyResult> {
  const store = options.store ?? evidenceStore(options.evidenceDir);
  const published = await store.publishedKeys();
  // A shared store holds its own chain head: a cut tail shows against it as against the target's anchor.
  const chainAnchor = store.anchor() ?? options.anchor;
  const warnings: string[] = [...published.problems];
  const keys = new Keyring(published.keys);
  let head: ChainHead | null = null;
  let logId: string | null = null;
  let anchor: ChainHead | null = null;
  let pins: KeyPins = { trustedKeys: options.trustedKeys ?? [], anchorKeys: [] };
  let genesis: { readonly keyId: string; readonly line: number } | null = null;
  let lastTs = Number.NEGATIVE_INFINITY;
  // Heads remembered outside the file; the anchor joins once entry 1 gives the log id.
  const heads: { readonly what: string; readonly head: ChainHead }[] = options.expectHead
    ? [{ what: '--expect-head', head: options.expectHead }]
    : [];
  let entries = 0;
  let lines = 0;
  const everySignature = options.signatures !== 'head';
  let unsigned: { readonly entry: AuditEntry; readonly key: KeyObject; readonly line: number } | null = null;
  const result = (firstBad?: VerifyProblem): VerifyResult => ({
    ok: !firstBad,
    entries,
    head,
    ...(firstBad ? { firstBad } : {}),
    logId,
    keys: keys.used,
    anchor,
    trust: keyTrust(pins),
    warnings,
  });

  for await (const raw of store.readLines()) {
    lines = raw.line;
    const expectedSeq = entries + 1;
    const bad = (reason: VerifyProblem['reason'], detail: string, seq = expectedSeq) => result({ seq, line: raw.line, reason, detail });
    if (!raw.terminated)
      return bad('truncated', 'the file ends in the middle of a line: the last write was cut short, or the file was cut');
    let entry: AuditEntry;
    try {
      entry = parseEntryLine(raw.text);
    } catch (error) {
      if (!(error instanceof MalformedEntryError)) throw error;
      return bad('malformed', `the line is not an audit entry: ${error.message}`);
    }
    const hashed = checkEntryHash(raw.text, entry);
    if (!hashed.ok) return bad('hash-mismatch', hashed.detail, entry.seq);
    const key = keys.signerOf(entry, expectedSeq === 1);
    if (typeof key === 'string') return bad('unknown-key', key, entry.seq);
    if (everySignature || entry.seq === 1 || INTRODUCING_KINDS.has(entry.kind)) {
      if (!signatureValid(entry, key))
        return bad('bad-signature', `the Ed25519 signature does not verify with key ${entry.keyId}`, entry.seq);
      unsigned = null;
    } else unsigned = { entry, key, line: raw.line };
    if (entry.seq !== expectedSeq) return bad('seq-gap', seqProblem(entry.seq, expectedSeq), entry.seq);
    const prev = head?.hash ?? GENESIS_PREV;
    if (entry.prev !== prev) {
      const should = head ? `the hash of entry ${head.seq} (${short(prev)})` : 'the genesis value (64 zeros)';
      return bad('broken-link', `its prev ${short(entry.prev)} is not ${should}: an entry before it was replaced or reordered`, entry.seq);
    }
    // A clock set back could otherwise place an entry inside an earlier window of the timeline.
    const ts = Date.parse(entry.ts);
    if (Number.isNaN(ts)) return bad('malformed', `its ts ${JSON.stringify(entry.ts)} is not a timestamp`, entry.seq);
    if (ts < lastTs)
      return bad(
        'time-order',
        `its ts ${entry.ts} is earlier than entry ${entry.seq - 1}'s ${new Date(lastTs).toISOString()}: entries never go back in time`,
        entry.seq,
      );
    lastTs = ts;
    // Only now is the body read: a body that was changed is the hash's finding, not this one.
    const parsed = parseRecord(entry);
    if (!parsed.ok && parsed.reason === 'bad-body') return bad('bad-body', `entry ${entry.seq}: ${parsed.detail}`, entry.seq);
    // An unknown kind is a newer safe-run's entry: its bytes are signed and chained like any other.
    const record = parsed.ok ? parsed.record : null;
    if (record?.kind === 'key.rotate' || record?.kind === 'key.add') {
      const problem = keys.introduce(record);
      if (problem) return bad('malformed', problem, entry.seq);
    }
    if (entry.seq === 1) {
      logId = entry.hash;
      genesis = { keyId: entry.keyId, line: raw.line };
      anchor = await readAnchor(chainAnchor, logId, warnings);
      if (anchor) heads.unshift({ what: 'the database anchor', head: anchor });
    }
    for (const { what, head: pinned } of heads) {
      if (pinned.seq === entry.seq && pinned.hash !== entry.hash) {
        return bad(
          'broken-link',
          `${what} records hash ${short(pinned.hash)} for entry ${pinned.seq}, this log has ${short(entry.hash)}: the log was rewritten from here or earlier`,
          entry.seq,
        );
      }
    }
    head = { seq: entry.seq, hash: entry.hash };
    entries++;
  }

  if (unsigned && !signatureValid(unsigned.entry, unsigned.key)) {
    return result({
      seq: unsigned.entry.seq,
      line: unsigned.line,
      reason: 'bad-signature',
      detail: `the head's Ed25519 signature does not verify with key ${unsigned.entry.keyId}: the log was rewritten`,
    });
  }
  // A log cut short is still a valid chain; only a head remembered elsewhere shows what is missing.
  const have = head?.seq ?? 0;
  for (const { what, head: pinned } of heads) {
    if (pinned.seq > have) {
      const missing = pinned.seq === have + 1 ? `entry ${pinned.seq} is` : `entries ${have + 1}…${pinned.seq} are`;
      return result({
        seq: have + 1,
        line: lines + 1,
        reason: 'truncated',
        detail: `${what} records head ${pinned.seq}:${pinned.hash}, but the log ends at entry ${have}: ${missing} missing`,
      });
    }
  }
  pins = { ...pins, anchorKeys: await anchoredKeys(chainAnchor, logId, options.evidenceDir, warnings) };
  const untrusted = untrustedSigners(pins, keys.signers, genesis);
  if (untrusted) return result(untrusted);
  if (chainAnchor && !anchor && !warnings.some((w) => w.startsWith('Could not read'))) {
    warnings.push(...(await unanchoredWarnings(chainAnchor, logId)));
  }
  return result();
}

function seqProblem(found: number, expected: number): string {
  if (found < expected) return `expected entry ${expected}, found entry ${found} again: an entry was duplicated or moved back`;
  const missing = found === expected + 1 ? `entry ${expected} is` : `entries ${expected}…${found - 1} are`;
  return `expected entry ${expected}, found entry ${found}: ${missing} missing or out of order`;
}

async function readAnchor(anchor: ChainAnchor | null | undefined, logId: string, warnings: string[]): Promise<ChainHead | null> {
  if (!anchor) return null;
  try {
    return await anchor.read(logId);
  } catch (error) {
    warnings.push(`Could not read the chain head anchored in the database (${errorMessage(error)}); the file was verified without it.`);
    return null;
  }
}

/**
 * Not failures, because one database may serve several evidence directories; but an
 * emptied log, or one replaced wholesale under a new genesis, looks exactly like this.
 */
async function unanchoredWarnings(anchor: ChainAnchor, logId: string | null): Promise<string[]> {
  const warnings = logId
    ? [`The database holds no chain head for this log (id ${short(logId)}), so a cut-off tail cannot be detected against it.`]
    : [];
  try {
    const others = (await anchor.list?.()) ?? [];
    if (others.length) {
      const latest = others[0]!;
      warnings.push(
        `The database anchors ${others.length} other log(s) (latest: id ${short(latest.logId)} at entry ${latest.seq}, ${latest.updatedAt}); if this evidence directory held one of them, it was ${logId ? 'replaced' : 'emptied'}.`,
      );
    }
  } catch (error) {
    warnings.push(`Could not list the chain heads anchored in the database (${errorMessage(error)}).`);
  }
  return warnings;
}

const short = (hash: string): string => `${hash.slice(0, 16)}…`;
