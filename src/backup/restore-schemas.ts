import { execa } from 'execa';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ExitCode, SafeRunError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { TocEntry } from './archive.js';
import { pgChildEnv } from './child-env.js';
import { runPgRestore } from './pg-restore.js';
import { resolvePgTool } from './pg-tools.js';

/**
 * What `pg_dump --table` leaves out and a restore into an empty database needs first.
 */

export interface PrerequisiteOptions {
  readonly prerequisitesFrom: URL;
  readonly targetUrl: URL;
  readonly pgBinDir: string | null;
  readonly serverMajor: number;
  readonly log: Logger;
}

/**
 * Copies schemas, extensions, types, domains and functions from the live database: a
 * schema-only dump with every relation excluded (`*.*` matches tables, views and
 * sequences in all schemas). The archive then brings its own tables, sequences and rows.
 */
export async function copyPrerequisites(options: PrerequisiteOptions, pgRestore: string, workDir: string): Promise<void> {
  const pgDump = await resolvePgTool('pg_dump', options.serverMajor, options.pgBinDir);
  const file = path.join(workDir, 'prerequisites.dump');
  const dumpArgs = [
    '--format=custom',
    '--schema-only',
    '--exclude-table=*.*',
    '--exclude-schema=safe_run',
    '--no-password',
    `--file=${file}`,
  ];
  const dumped = await execa(pgDump.path, dumpArgs, {
    env: pgChildEnv(options.prerequisitesFrom, 'safe-run restore'),
    extendEnv: false,
    stdin: 'ignore',
    reject: false,
  });
  if (dumped.exitCode !== 0) {
    const hint =
      'safe-run copies the schemas, types and functions a table archive lacks from the live database; check that its role can pg_dump --schema-only.';
    throw new SafeRunError(
      `Restore failed: pg_dump of the schema prerequisites failed: ${String(dumped.stderr).trim()}`,
      ExitCode.backupFailed,
      hint,
    );
  }
  const hint = 'The schemas, types and functions the archive needs could not be created in the target; nothing was committed there.';
  await runPgRestore({ bin: pgRestore, archive: file, target: options.targetUrl, hint, log: options.log });
}

/**
 * The schemas an archive's tables live in. `pg_restore --list` prints `schema name owner`
 * unquoted, which cannot be split when names contain spaces, so we ask pg_restore for the
 * tables' DDL instead, where pg_dump has quoted every identifier that needs it.
 */
export async function schemasOfTables(
  pgRestore: string,
  archive: string,
  entries: readonly TocEntry[],
  env: Record<string, string>,
  workDir: string,
): Promise<string[]> {
  const tables = entries.filter((e) => e.type === 'TABLE');
  if (!tables.length) return [];
  const listFile = path.join(workDir, 'tables.list');
  await writeFile(listFile, tables.map((e) => e.line).join('\n') + '\n');
  // --file=- prints the SQL instead of running it.
  const result = await execa(pgRestore, ['--schema-only', '--file=-', `--use-list=${listFile}`, archive], {
    env,
    extendEnv: false,
    stdin: 'ignore',
    reject: false,
  });
  if (result.exitCode !== 0) {
    const message = `Restore failed: pg_restore could not read the table definitions: ${String(result.stderr).trim()}`;
    throw new SafeRunError(message, ExitCode.backupFailed, 'The archive may be damaged; `safe-run verify` checks its signed hash.');
  }
  return schemasInDdl(String(result.stdout));
}

/** `CREATE TABLE "My Schema"."t" (` and `CREATE UNLOGGED TABLE s.t (` -> the schema names. */
export function schemasInDdl(ddl: string): string[] {
  const schemas = new Set<string>();
  const pattern = /^CREATE (?:UNLOGGED )?TABLE ("(?:[^"]|"")*"|[^\s."]+)\./gm;
  for (const match of ddl.matchAll(pattern)) {
    const ident = match[1]!;
    schemas.add(ident.startsWith('"') ? ident.slice(1, -1).replace(/""/g, '"') : ident);
  }
  return [...schemas].sort();
}
