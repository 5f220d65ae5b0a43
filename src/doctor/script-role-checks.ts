import { sql } from 'kysely';
import type { Config } from '../config/config.js';
import { type Db, onlyRow } from '../db/connection.js';
import { parseDatabaseUrl } from '../db/url.js';
import { ExitCode } from '../errors.js';
import { readTrust } from '../guard/settings.js';
import { withScriptSession } from '../run/script-session.js';
import { findScriptFiles, loadScriptFiles, scriptLoadOptions } from '../script/load.js';
import { fail, failFrom, pass, warn, type DoctorCheck } from './check.js';

const ROLE_HINT = 'Create a non-superuser role with what the scripts need and set "scriptRole" (docs/security.md).';

/**
 * The role scripts run as: a superuser can switch counting and triggers off between two
 * statements, which no check after the script can see. The guard measures on the script's
 * own session, so the role needs SELECT on every declared and critical table.
 */
export async function checkScriptRole(config: Config, db: Db | null): Promise<DoctorCheck[]> {
  if (!db) return [];
  const url = parseDatabaseUrl(config.databaseUrl);
  try {
    return await withScriptSession(config, url, 'safe-run doctor', (session) => scriptRoleChecks(config, session));
  } catch (error) {
    return [failFrom('script-role', error, ExitCode.usage, ROLE_HINT)];
  }
}

async function scriptRoleChecks(config: Config, session: Db): Promise<DoctorCheck[]> {
  const { rows } = await sql<{ role: string }>`select session_user::text as role`.execute(session);
  const role = onlyRow(rows).role;
  const trust = await readTrust(session);
  const checks: DoctorCheck[] = [
    trust === 'role'
      ? pass('script-role', `scripts run as ${role}, not a superuser (trust: role)`)
      : warn('script-role', `scripts run as ${role}, a superuser: a script could switch counting off unseen (trust: superuser)`, ROLE_HINT),
  ];
  const missing = await tablesWithoutSelect(config, session);
  if (missing.length)
    checks.push(
      fail(
        'script-role-select',
        `${role} cannot read ${missing.join(', ')}`,
        `GRANT SELECT ON ${missing.join(', ')} TO ${role};`,
        ExitCode.usage,
      ),
    );
  return checks;
}

async function tablesWithoutSelect(config: Config, session: Db): Promise<string[]> {
  const scripts = await loadScriptFiles([...findScriptFiles(config.scriptsDirs).values()], scriptLoadOptions(config));
  const tables = new Set<string>(Object.keys(config.criticalTables));
  for (const s of scripts) if (!(s instanceof Error)) for (const t of [...Object.keys(s.touches), ...s.critical]) tables.add(t);
  const missing: string[] = [];
  for (const table of [...tables].sort()) {
    const { rows } = await sql<{ ok: boolean | null }>`
      select pg_catalog.has_table_privilege(pg_catalog.to_regclass(${table}), 'SELECT') as ok`.execute(session);
    if (rows[0]?.ok === false) missing.push(table);
  }
  return missing;
}
