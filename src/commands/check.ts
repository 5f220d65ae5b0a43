import type { CommandBody } from './registry.js';
import { ExitCode } from '../errors.js';
import { checkDatabase, type CheckResult } from '../history/check.js';
import { emit, withEvidenceContext, type GlobalArgs } from './context.js';

export { checkDatabase };

function renderCheck(r: CheckResult): string {
  const against = `#${r.against.seq} ${r.against.kind} at ${r.against.ts}`;
  if (r.status === 'clean')
    return [`check ${r.database}: clean (nothing changed since ${against})`, ...r.findings.map((f) => `  ${f.kind}  ${f.detail}`)].join(
      '\n',
    );
  const width = Math.max(...r.findings.map((f) => f.kind.length));
  const lines = [`check ${r.database}: DRIFT since ${against}, ${r.findings.length} finding(s)`];
  for (const f of r.findings) lines.push(`  ${f.kind.padEnd(width)}  ${f.detail}`);
  // The critical table is the one the operator is about to be asked about.
  const table = (r.findings.find((f) => f.kind.startsWith('critical-')) ?? r.findings.find((f) => f.kind === 'count-changed'))?.table;
  lines.push(table ? `  next: safe-run blame ${table.replace(/^public\./, '')}` : '  next: safe-run log');
  return lines.join('\n');
}

export const checkCommand: CommandBody<GlobalArgs> = {
  handler: async (argv) => {
    await withEvidenceContext(argv, async (ctx, target) => {
      const result = await checkDatabase(ctx.config, target, ctx.log);
      emit(ctx, result, renderCheck, result.status === 'drift' ? ExitCode.drift : ExitCode.ok);
    });
  },
};
