import { evidenceStore } from '../audit/store.js';
import type { Config } from '../config/config.js';
import type { TargetHandle } from '../db/target.js';
import { SafeRunError } from '../errors.js';
import type { Logger } from '../logger.js';
import { analyzeTable } from '../blame/blame.js';
import { renderHtml } from './html.js';
import { renderMarkdown } from './md.js';
import { runReportBlocks, runVerdict } from './run.js';
import { tableReportBlocks } from './table.js';
import { findRestoreSource } from '../blame/restore-source.js';
import { showRun } from '../history/run-record.js';
import { decideVerdict } from '../blame/verdict.js';
import { verifyInWorker } from './verify-in-worker.js';

export type ReportFormat = 'md' | 'html';

export interface ReportOptions {
  readonly subject: string;
  readonly format: ReportFormat;
  /** Add the live database as the last observation (off for a database that is gone). */
  readonly live: boolean;
}

export interface ReportResult {
  readonly subject: { readonly type: 'table' | 'run'; readonly name: string };
  readonly format: ReportFormat;
  readonly verdict: readonly string[];
  readonly verified: boolean | null;
  readonly document: string;
}

/** Run ids are upper-case ULIDs; table names that look like one are not a realistic worry. */
const RUN_ID_LIKE = /^[0-9A-HJKMNP-TV-Z]{4,26}$/;

/**
 * `safe-run report <table or run>`: the post-mortem document. The subject is a run when the
 * argument is (a prefix of) a run id in the log, a table otherwise.
 */
export async function buildReport(config: Config, options: ReportOptions, target: TargetHandle, log: Logger): Promise<ReportResult> {
  const { subject, format } = options;
  const generatedAt = new Date().toISOString();
  const logFile = evidenceStore(config.evidenceDir).where;
  const render = format === 'html' ? renderHtml : renderMarkdown;
  // Started first: it is the slowest part and runs beside the analysis.
  const verifying = verifyInWorker(config.evidenceDir, options.live ? config.databaseUrl : null, config);
  try {
    const record = RUN_ID_LIKE.test(subject) ? await showRun(config, subject, target, log).catch(notARun) : null;
    if (record) {
      const verification = await verifying.outcome;
      const blocks = runReportBlocks({ record, verification, logFile, generatedAt });
      return {
        subject: { type: 'run', name: record.runId },
        format,
        verdict: [runVerdict(record)],
        verified: verification.result?.ok ?? null,
        document: render(blocks),
      };
    }
    const analysis = await analyzeTable(config, { table: subject, since: null, live: options.live }, target, log);
    const verdict = decideVerdict(analysis);
    const restore = findRestoreSource(analysis.table, analysis.runs, analysis.rawObservations, verdict.decisive, analysis.execs);
    const verification = await verifying.outcome;
    const blocks = tableReportBlocks({ analysis, verdict, restore, verification, logFile, generatedAt });
    return {
      subject: { type: 'table', name: analysis.table },
      format,
      verdict: verdict.sentences,
      verified: verification.result?.ok ?? null,
      document: render(blocks),
    };
  } catch (error) {
    verifying.cancel();
    throw error;
  }
}

/** A run-id-looking word that is no run in the log is taken as a table name. */
function notARun(error: unknown): null {
  if (error instanceof SafeRunError && /^No run /.test(error.message)) return null;
  throw error;
}
