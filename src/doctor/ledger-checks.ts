import type { Config } from '../config/config.js';
import type { Db } from '../db/connection.js';
import { ExitCode, errorMessage } from '../errors.js';
import { ledgerTriggerFindings } from '../ledger/findings.js';
import { readLedgerState } from '../ledger/state.js';
import { fail, pass, warn, type DoctorCheck } from './check.js';

/**
 * What `protect` installed and whether it still records: a ledger trigger that is missing or
 * not ENABLE ALWAYS lets writes through unnamed. Shown only once the ledger exists.
 */
export async function checkLedger(config: Config, db: Db | null): Promise<DoctorCheck[]> {
  if (!db) return [];
  try {
    const state = await readLedgerState(db);
    if (!state.installed) return [];
    const tables = state.tables.map((t) => `${t.key}${t.keepRows ? ' (rows kept)' : ''}${t.exists ? '' : ' (dropped)'}`).join(', ');
    const findings = await ledgerTriggerFindings(db, Object.keys(config.criticalTables));
    if (!findings.length) return [pass('ledger', `protected: ${tables || '(no table)'}; every ledger trigger is ENABLE ALWAYS`)];
    return [
      fail(
        'ledger',
        `protected: ${tables || '(no table)'}; ${findings.map((f) => f.detail).join('; ')}`,
        'As a superuser: `safe-run protect` (configured and critical tables) or `safe-run protect <table>`; then find out who disabled it.',
        ExitCode.usage,
      ),
    ];
  } catch (error) {
    return [
      warn(
        'ledger',
        `cannot read the change ledger's state: ${errorMessage(error)}`,
        'Run doctor as the role that ran `safe-run protect`.',
      ),
    ];
  }
}
