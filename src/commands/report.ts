import type { CommandBody } from './registry.js';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildReport, type ReportFormat, type ReportOptions, type ReportResult } from '../report/report.js';
import { usageError, errorMessage } from '../errors.js';
import { emit, withEvidenceContext, type GlobalArgs } from './context.js';

export { buildReport };

interface ReportArgs extends GlobalArgs {
  readonly subject: string;
  readonly format?: ReportFormat;
  readonly o?: string;
  readonly live?: boolean;
}

/** With -o the document goes to the file and stdout gets one line saying where; otherwise stdout gets the document. */
export const reportCommand: CommandBody<ReportArgs> = {
  builder: (yargs) =>
    yargs
      .positional('subject', { type: 'string', demandOption: true, describe: 'A table (schema.table) or a run id (or a unique prefix)' })
      .option('format', {
        choices: ['md', 'html'] as const,
        describe: 'Document format (default: html for an -o name ending in .html, md otherwise)',
      })
      .option('o', { alias: ['output', 'out'], type: 'string', describe: 'Write the document to this file (.html: the HTML page)' })
      .option('live', {
        type: 'boolean',
        default: true,
        describe: 'Include the live database (--no-live: the log only, e.g. when the database is gone)',
      })
      .example('$0 report users -o users-empty.html', 'The post-mortem of the users table, as a page to open in a browser')
      .example('$0 report users -o users-empty.md', 'The same as Markdown, for a ticket'),
  handler: async (argv) => {
    await withEvidenceContext(argv, async (ctx, target) => {
      const options: ReportOptions = { subject: argv.subject, format: formatFor(argv.format, argv.o), live: argv.live !== false };
      const result = await buildReport(ctx.config, options, target, ctx.log);
      if (!argv.o) {
        emit(ctx, result, (r: ReportResult) => r.document);
        return;
      }
      const file = path.resolve(argv.o);
      try {
        writeFileSync(file, result.document);
      } catch (error) {
        throw usageError(`Cannot write the report to ${file}: ${errorMessage(error)}`, 'Choose a writable path for -o.');
      }
      const { document: _document, ...summary } = result;
      emit(
        ctx,
        { ...summary, file },
        (r) => `report on ${r.subject.type} ${r.subject.name} written to ${r.file}\n  ${r.verdict.join('\n  ')}`,
      );
    });
  },
};

/** An explicit --format wins; otherwise the file name says what the reader will open it with. */
export function formatFor(format: ReportFormat | undefined, output: string | undefined): ReportFormat {
  if (format) return format;
  return output && /\.html?$/i.test(output) ? 'html' : 'md';
}
