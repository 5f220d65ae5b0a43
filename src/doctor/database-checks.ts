import { sql } from 'kysely';
import { resolvePgTool, type PgTool } from '../backup/pg-tools.js';
import type { Config } from '../config/config.js';
import type { Db } from '../db/connection.js';
import { readIdentity, serverMajor } from '../db/identity.js';
import type { TargetHandle } from '../db/target.js';
import { redactUrl } from '../db/url.js';
import { ExitCode } from '../errors.js';
import type { DatabaseIdentity } from '../records/index.js';
import { fail, failFrom, pass, warn, type DoctorCheck } from './check.js';

export interface DatabaseProbe {
  readonly checks: readonly DoctorCheck[];
  /** The target's pool when the database answered (the command closes it); the audit check reads the chain head through it. */
  readonly db: Db | null;
  readonly identity: DatabaseIdentity | null;
}

const CONNECT_HINT = 'Check that the server is running and that the URL, user and password are right (--db, DATABASE_URL or "database").';

/** Connectivity and server version. The URL is only ever shown redacted. */
export async function probeDatabase(target: TargetHandle): Promise<DatabaseProbe> {
  try {
    // A bad URL and an unreachable server both throw here, each with its own message.
    const { db, url } = await target.open();
    const identity = await readIdentity(db, url);
    return {
      checks: [
        pass('database', `connected to ${redactUrl(url)} as ${identity.currentUser}`),
        pass('server-version', `PostgreSQL ${identity.serverVersion} (major ${serverMajor(identity)})`),
        await checkCreatedb(db),
      ],
      db,
      identity,
    };
  } catch (error) {
    return { checks: [failFrom('database', error, ExitCode.usage, CONNECT_HINT), notChecked('server-version')], db: null, identity: null };
  }
}

/** `safe-run restore <run>` creates a scratch database by default: the role needs CREATEDB for it. */
async function checkCreatedb(db: Db): Promise<DoctorCheck> {
  const { rows } = await sql<{ role: string; can: boolean }>`
    select r.rolname as role, r.rolcreatedb or r.rolsuper as can
      from pg_catalog.pg_roles r where r.rolname = current_user`.execute(db);
  const row = rows[0];
  if (row?.can) return pass('createdb', `${row.role} may create databases: \`safe-run restore <run>\` can make its scratch database`);
  return warn(
    'createdb',
    `${row?.role ?? 'this role'} has no CREATEDB: \`safe-run restore <run>\` cannot create its scratch database`,
    'ALTER ROLE <role> CREATEDB (as a superuser), or use `restore <run> --in-place --table T` or `--into URL`, which need none.',
  );
}

function notChecked(name: string): DoctorCheck {
  return fail(name, 'not checked: the database did not answer', 'Fix the database check above first.', ExitCode.usage);
}

/**
 * pg_dump and pg_restore of the server's major version or newer, found the way a run finds
 * them. Without a server to compare with, any version found is shown but not vouched for.
 */
export async function checkPgTools(config: Config, identity: DatabaseIdentity | null): Promise<DoctorCheck[]> {
  const tools: PgTool[] = ['pg_dump', 'pg_restore'];
  return Promise.all(tools.map((tool) => checkPgTool(tool, config, identity)));
}

async function checkPgTool(tool: PgTool, config: Config, identity: DatabaseIdentity | null): Promise<DoctorCheck> {
  const major = identity ? serverMajor(identity) : 0;
  try {
    const found = await resolvePgTool(tool, major, config.pgBinDir);
    if (!identity) {
      return fail(
        tool,
        `${found.path} (version ${found.version}); not compared with the server, which did not answer`,
        'Fix the database check above, then run `safe-run doctor` again.',
        ExitCode.usage,
      );
    }
    return pass(tool, `${found.path} (version ${found.version}, server ${major})`);
  } catch (error) {
    return failFrom(
      tool,
      error,
      ExitCode.backupFailed,
      `Install the PostgreSQL ${major} client programs, or set "pgBinDir" in the config.`,
    );
  }
}
