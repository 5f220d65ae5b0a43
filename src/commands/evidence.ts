import { mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import type { Argv } from 'yargs';
import { auditFailure, fsyncDir } from '../audit/jsonl.js';
import { publishPublicKey } from '../audit/keys.js';
import { EVIDENCE_DIR_MODE, EVIDENCE_FILE_MODE } from '../audit/modes.js';
import { readLines } from '../audit/read.js';
import type { DatabaseEvidenceStore } from '../audit/store-pg.js';
import { evidenceStore, fileStore } from '../audit/store.js';
import type { ChainHead } from '../audit/types.js';
import { verifyLog } from '../audit/verify.js';
import type { Config } from '../config/config.js';
import { ExitCode, errorCode, SafeRunError, usageError } from '../errors.js';
import { emit, loadContext, type GlobalArgs } from './context.js';
import type { CommandBody } from './registry.js';

export interface EvidenceExportResult {
  readonly action: 'export';
  readonly file: string;
  readonly entries: number;
  readonly head: ChainHead | null;
  /** The exported file verified offline, as `safe-run verify` will. */
  readonly verified: boolean;
}

export interface EvidenceImportResult {
  readonly action: 'import';
  readonly file: string;
  readonly entries: number;
  readonly head: ChainHead | null;
  readonly store: string;
}

/** The shared store of this config, or exit 2: export and import move a chain in or out of one. */
function sharedStore(config: Config): DatabaseEvidenceStore {
  const store = evidenceStore(config.evidenceDir);
  if (store.kind === 'database') return store as DatabaseEvidenceStore;
  throw usageError(
    `evidence.store is "file": the evidence is already the file ${store.where}.`,
    'Set "evidence": { "store": "postgres://…" } in the config, or SAFE_RUN_EVIDENCE_STORE, to export from or import into a shared evidence store.',
  );
}

/**
 * `safe-run evidence export [--out FILE]`: the target's chain as audit.jsonl, with the
 * signers' public keys in keys/ beside it, so `safe-run verify` checks it with no store.
 */
export async function exportEvidence(config: Config, options: { readonly out?: string }): Promise<EvidenceExportResult> {
  const store = sharedStore(config);
  const file = path.resolve(options.out ?? path.join('evidence-export', 'audit.jsonl'));
  const dir = path.dirname(file);
  let entries = 0;
  try {
    await mkdir(dir, { recursive: true, mode: EVIDENCE_DIR_MODE });
    // 'wx': an export never overwrites a log that is already there.
    const handle = await open(file, 'wx', EVIDENCE_FILE_MODE);
    try {
      for await (const raw of store.readLines()) {
        await handle.write(`${raw.text}\n`);
        entries++;
      }
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fsyncDir(dir);
  } catch (error) {
    if (errorCode(error) === 'EEXIST')
      throw usageError(`${file} already exists; an export never overwrites a log.`, 'Give another --out FILE, or move that file away.');
    if (error instanceof SafeRunError) throw error;
    throw auditFailure(`Cannot write the export ${file}`, error);
  }
  for (const key of (await store.publishedKeys()).keys.values()) await publishPublicKey(dir, key);
  const result = await verifyLog({ evidenceDir: dir, store: fileStore(dir, file), trustedKeys: config.trustedKeys });
  return { action: 'export', file, entries, head: result.head, verified: result.ok };
}

/**
 * `safe-run evidence import FILE`: an existing audit.jsonl (keys/ beside it) becomes the
 * target's chain in the store, byte for byte. It is verified first; a broken chain is refused.
 */
export async function importEvidence(config: Config, options: { readonly file: string }): Promise<EvidenceImportResult> {
  const store = sharedStore(config);
  const file = path.resolve(options.file);
  const dir = path.dirname(file);
  const source = fileStore(dir, file);
  const result = await verifyLog({ evidenceDir: dir, store: source, trustedKeys: config.trustedKeys });
  if (!result.ok || !result.head) {
    const bad = result.firstBad;
    throw new SafeRunError(
      bad ? `${file} does not verify: entry ${bad.seq}: ${bad.reason} — ${bad.detail}` : `${file} holds no entries.`,
      bad ? ExitCode.auditFailed : ExitCode.usage,
      bad
        ? 'Nothing was imported. Run `safe-run verify` on that evidence directory to see what is wrong; import only a log that verifies.'
        : 'Give the audit.jsonl of an evidence directory (its keys/ must sit beside it).',
    );
  }
  const lines: string[] = [];
  for await (const raw of readLines(file)) lines.push(raw.text);
  const entries = await store.importLines(lines, (await source.publishedKeys()).keys.values());
  return { action: 'import', file, entries, head: result.head, store: store.where };
}

function renderExport(r: EvidenceExportResult): string {
  const head = r.head ? `head ${r.head.seq}:${r.head.hash}` : 'empty';
  return [
    `Exported ${r.entries} entries to ${r.file} (${head}); ${r.verified ? 'it verifies offline' : 'it does NOT verify: run verify on it'}.`,
    `  verify it anywhere: SAFE_RUN_EVIDENCE_STORE=file SAFE_RUN_EVIDENCE_DIR=${path.dirname(r.file)} safe-run verify`,
  ].join('\n');
}

function renderImport(r: EvidenceImportResult): string {
  return `Imported ${r.entries} verified entries from ${r.file} into the ${r.store} (head ${r.head?.seq}:${r.head?.hash}).`;
}

interface EvidenceArgs extends GlobalArgs {
  readonly action: 'export' | 'import';
  readonly file?: string;
  readonly out?: string;
}

export const evidenceCommand: CommandBody<EvidenceArgs> = {
  builder: (yargs: Argv<GlobalArgs>) =>
    yargs
      .positional('action', {
        choices: ['export', 'import'] as const,
        demandOption: true,
        describe: 'export the chain to a file, or import a file into the store',
      })
      .positional('file', { type: 'string', describe: 'import: the audit.jsonl to load (its keys/ beside it)' })
      .option('out', {
        type: 'string',
        describe: 'export: where to write audit.jsonl (default evidence-export/audit.jsonl; never overwritten)',
      })
      .example('safe-run evidence export --out /tmp/ev/audit.jsonl', "this database's chain from the shared store, keys in /tmp/ev/keys")
      .example('SAFE_RUN_EVIDENCE_STORE=file SAFE_RUN_EVIDENCE_DIR=/tmp/ev safe-run verify', 'check that export with no store and no --db')
      .example('safe-run evidence import snapshots/audit.jsonl', "load this host's old file log as the database's chain (verified first)"),
  handler: async (argv) => {
    const ctx = await loadContext(argv);
    if (argv.action === 'export') return emit(ctx, await exportEvidence(ctx.config, { out: argv.out }), renderExport);
    if (!argv.file) throw usageError('evidence import needs the FILE to import.', 'safe-run evidence import snapshots/audit.jsonl');
    emit(ctx, await importEvidence(ctx.config, { file: argv.file }), renderImport);
  },
};
