import type { CommandBody } from './registry.js';
import type { Config } from '../config/config.js';
import { doctorExitCode, type DoctorCheck } from '../doctor/check.js';
import { checkPgTools, probeDatabase } from '../doctor/database-checks.js';
import { checkAuditLog, checkDiskSpace, checkEvidenceDir } from '../doctor/evidence-checks.js';
import { checkSigningKey } from '../doctor/key-checks.js';
import { checkScriptRole } from '../doctor/script-role-checks.js';
import { checkStartup } from '../doctor/startup-checks.js';
import { checkLedger } from '../doctor/ledger-checks.js';
import { checkPgBackRest } from '../doctor/pgbackrest-checks.js';
import { checkEvidenceModes, checkWitnesses } from '../doctor/trust-checks.js';
import { withTarget, type TargetHandle } from '../db/target.js';
import type { ExitCode } from '../errors.js';
import type { Logger } from '../logger.js';
import { emit, loadContext, type GlobalArgs } from './context.js';

export interface DoctorReport {
  readonly ok: boolean;
  /** The exit code `safe-run doctor` ends with: 0, or the most severe failure (5 > 4 > 2). */
  readonly exitCode: ExitCode;
  readonly checks: readonly DoctorCheck[];
}

/**
 * `safe-run doctor`: everything a guarded run needs, checked without running anything.
 * Every check runs even after a failure, so one pass shows every problem.
 */
export async function doctor(config: Config, target: TargetHandle, log: Logger): Promise<DoctorReport> {
  const database = await probeDatabase(target);
  const checks: DoctorCheck[] = [
    ...database.checks,
    ...(await checkPgTools(config, database.identity)),
    ...(await checkPgBackRest(config, database.db, database.identity, log)),
    ...(await checkSigningKey(config)),
    await checkEvidenceDir(config.evidenceDir),
    await checkAuditLog(config.evidenceDir, database.db),
    await checkDiskSpace(config.evidenceDir),
    await checkEvidenceModes(config.evidenceDir),
    await checkWitnesses(config.evidenceDir, config.witness.length),
    ...(await checkScriptRole(config, database.db)),
    ...(await checkLedger(config, database.db)),
    checkStartup(),
  ];
  const exitCode = doctorExitCode(checks);
  return { ok: exitCode === 0, exitCode, checks };
}

export function renderDoctor(report: DoctorReport): string {
  const width = Math.max(...report.checks.map((c) => c.name.length));
  const lines = report.checks.flatMap((c) => {
    const status = !c.ok ? 'FAIL' : c.warning ? 'WARN' : 'OK';
    const line = `  ${status.padEnd(4)}  ${c.name.padEnd(width)}  ${c.detail}`;
    return c.hint && (!c.ok || c.warning) ? [line, `        ${' '.repeat(width)}  next: ${c.hint}`] : [line];
  });
  const failed = report.checks.filter((c) => !c.ok).length;
  lines.push(
    report.ok
      ? 'All checks passed.'
      : `${failed} check(s) failed; exit ${report.exitCode}. Fix them from the top: later checks often depend on earlier ones.`,
  );
  return lines.join('\n');
}

const EPILOG = `Exit codes: 0 all OK (a WARN does not fail), 2 configuration (bad URL, unreachable database, missing or unsafe key), 4 no pg_dump/pg_restore of the server's major version or newer (pgbackrest mode: pgBackRest missing, stanza or WAL archiving broken), 5 evidence directory not writable or audit log does not verify.
When several checks fail, the most severe code wins: 5 over 4 over 2 (a log that does not verify may mean tampering; it is never hidden behind a configuration problem).`;

export const doctorCommand: CommandBody<GlobalArgs> = {
  builder: (yargs) =>
    yargs
      .example('$0 doctor', 'One line per check, OK/WARN/FAIL, with the next step')
      .example('$0 doctor --db postgres://app@db.internal/app --json', 'The same as { ok, checks: [...] }')
      .epilog(EPILOG),
  handler: async (argv) => {
    const ctx = await loadContext(argv);
    const report = await withTarget(ctx.config.databaseUrl, (target) => doctor(ctx.config, target, ctx.log));
    emit(ctx, report, renderDoctor, report.exitCode);
  },
};
