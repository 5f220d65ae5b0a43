import path from 'node:path';
import { ExitCode, SafeRunError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { AuditEntry } from './types.js';
import { recordWitnessResults } from './witness-state.js';

/** Config `witness`: a command that keeps each signed head somewhere the log's owner cannot rewrite. */
export interface Witness {
  readonly command: string;
  readonly required: boolean;
}

/**
 * One line on the witness's stdin. `sig` is the entry's own Ed25519 signature over `hash`
 * by `keyId`, so a witness file is checkable on its own with the public key, and
 * `safe-run verify --witness FILE` checks the log against it.
 */
export interface WitnessedHead {
  readonly logId: string;
  readonly seq: number;
  readonly hash: string;
  readonly keyId: string;
  readonly sig: string;
  readonly ts: string;
}

/**
 * The witnesses of each evidence directory, set by the command layer from the config
 * (loadContext) so that every writer, the guarded run included, notifies them without each
 * call site passing them through. openAuditLog's own `witnesses` option overrides it.
 */
const configured = new Map<string, readonly Witness[]>();

export function configureWitnesses(evidenceDir: string, witnesses: readonly Witness[]): void {
  configured.set(path.resolve(evidenceDir), witnesses);
}

export function configuredWitnesses(evidenceDir: string): readonly Witness[] {
  return configured.get(path.resolve(evidenceDir)) ?? [];
}

export const witnessedHead = (logId: string, e: AuditEntry): WitnessedHead => ({
  logId,
  seq: e.seq,
  hash: e.hash,
  keyId: e.keyId,
  sig: e.sig,
  ts: e.ts,
});

/**
 * No shell: the command is split on whitespace, and '…' or "…" keep spaces inside one
 * argument (no escapes, no variables, no globbing). `sh -c '…'` is there for whoever
 * wants a shell, explicitly.
 */
export function splitCommand(command: string): string[] {
  const args: string[] = [];
  for (const match of command.matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)) args.push(match[1] ?? match[2] ?? match[3]!);
  return args;
}

// The witness learns nothing but the head: no DATABASE_URL, no PGPASSWORD, no key path.
const PASSED_ENV = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ'];
const WITNESS_TIMEOUT_MS = 30_000;

export interface WitnessOutcome {
  readonly command: string;
  readonly required: boolean;
  readonly ok: boolean;
  readonly error?: string;
}

async function runWitness(witness: Witness, line: string): Promise<WitnessOutcome> {
  const [file, ...args] = splitCommand(witness.command);
  const env = Object.fromEntries(PASSED_ENV.filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]!]));
  // execa is imported when a witness runs: every command configures witnesses, few call one.
  const { execa } = await import('execa');
  const result = await execa(file!, args, {
    input: line,
    env,
    extendEnv: false,
    reject: false,
    shell: false,
    timeout: WITNESS_TIMEOUT_MS,
    stdout: 'ignore',
  });
  if (result.exitCode === 0) return { command: witness.command, required: witness.required, ok: true };
  const why = result.failed && result.exitCode === undefined ? result.shortMessage : `exit ${result.exitCode}`;
  const stderr = String(result.stderr ?? '')
    .trim()
    .slice(0, 500);
  return { command: witness.command, required: witness.required, ok: false, error: `${why}${stderr ? `: ${stderr}` : ''}` };
}

/**
 * After the entry is durable and anchored: every witness gets the new head. One that fails
 * is remembered in the evidence directory and simply gets the next head at the next append
 * (a later head covers every earlier entry through the hash chain). A failed `required`
 * witness fails the append with exit 5, so a run's outcome entry fails and nothing commits.
 */
export async function notifyWitnesses(evidenceDir: string, witnesses: readonly Witness[], head: WitnessedHead, log: Logger): Promise<void> {
  if (!witnesses.length) return;
  const line = `${JSON.stringify(head)}\n`;
  const outcomes = await Promise.all(witnesses.map((w) => runWitness(w, line)));
  await recordWitnessResults(evidenceDir, head, outcomes).catch((error: Error) =>
    log.warn('Could not record the witness results', { error: error.message }),
  );
  for (const o of outcomes.filter((x) => !x.ok))
    log.warn(`witness failed for entry ${head.seq}; it gets the next head at the next append`, { command: o.command, error: o.error });
  const required = outcomes.filter((o) => !o.ok && o.required);
  if (required.length) {
    throw new SafeRunError(
      `A required witness did not take entry ${head.seq}: ${required.map((o) => `\`${o.command}\` (${o.error})`).join('; ')}.`,
      ExitCode.auditFailed,
      'Fix the witness (run it by hand with a head on stdin), or mark it "required": false. A run whose outcome could not be witnessed was not committed.',
    );
  }
}
