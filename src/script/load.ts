import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tableKey } from '../db/names.js';
import { usageError } from '../errors.js';
import type { Operation } from '../run/types.js';
import type { TableKey } from '../snapshot/types.js';
import type { ScriptDefinition } from './define.js';
import type { ScriptRunContext } from './gate.js';
import { parseSqlHeader } from './sql-header.js';
import { policyError, refusedStatements, splitStatements } from '../guard/statement-policy.js';

/** A script ready to run: declarations normalised to `schema.table` keys. */
export interface LoadedScript {
  readonly name: string;
  readonly description: string;
  readonly kind: 'ts' | 'sql';
  readonly path: string;
  readonly source: string;
  readonly sha256: string;
  readonly touches: Readonly<Record<TableKey, readonly Operation[]>>;
  readonly limits: Readonly<Record<TableKey, Partial<Record<Operation, number>>>>;
  readonly critical: readonly TableKey[];
  /** For SQL scripts, the statement text, so errors can point into it. */
  readonly sqlText?: string;
  run(context: ScriptRunContext): Promise<unknown>;
}

const EXTENSIONS = ['.ts', '.mts', '.js', '.mjs', '.sql'];

/** Script files in the configured directories, by the name they are called with. */
export function findScriptFiles(dirs: readonly string[]): Map<string, string> {
  const found = new Map<string, string>();
  for (const dir of dirs) {
    if (!existsSync(dir)) continue;
    for (const entry of readdirSync(dir).sort()) {
      const ext = path.extname(entry);
      if (!EXTENSIONS.includes(ext) || entry.endsWith('.d.ts') || entry.startsWith('_')) continue;
      const name = path.basename(entry, ext);
      // The first directory wins, so a project can shadow a shared script on purpose.
      if (!found.has(name)) found.set(name, path.join(dir, entry));
    }
  }
  return found;
}

export async function loadScriptByName(name: string, dirs: readonly string[]): Promise<LoadedScript> {
  const files = findScriptFiles(dirs);
  const file = files.get(name);
  if (!file) {
    const known = [...files.keys()];
    throw usageError(
      `Unknown script "${name}".`,
      known.length ? `Known scripts: ${known.join(', ')}. \`safe-run list\` shows what each does.` : `No scripts found in ${dirs.join(', ')}. Set "scriptsDir" in the config.`,
    );
  }
  return loadScriptFile(file);
}

export async function loadScriptFile(file: string): Promise<LoadedScript> {
  const source = readFileSync(file, 'utf8');
  const sha256 = createHash('sha256').update(source).digest('hex');
  if (file.endsWith('.sql')) return sqlScript(file, source, sha256);
  const definition = await importDefinition(file);
  return {
    name: definition.name,
    description: definition.description,
    kind: 'ts',
    path: file,
    source,
    sha256,
    ...normaliseDeclarations(file, definition.touches, definition.limits ?? {}, definition.critical ?? []),
    // Interim: in process, until the child-process runner lands (issue 10).
    run: (context) => definition.run({ db: (context as unknown as { db: never }).db, args: context.args, log: context.log, dryRun: context.dryRun }),
  };
}

async function sqlScript(file: string, source: string, sha256: string): Promise<LoadedScript> {
  // Judged whole before anything is locked: one refused statement and none of the file runs.
  const refusals = await refusedStatements(source, `Script ${file}`);
  if (refusals.length) throw policyError(refusals, `Script ${file}`);
  const statements = await splitStatements(source, `Script ${file}`);
  let header;
  try {
    header = parseSqlHeader(source, file);
  } catch (error) {
    throw usageError(`Bad script header: ${(error as Error).message}`, 'See "Scripts" in the README for the header format.');
  }
  return {
    name: path.basename(file, '.sql'),
    description: header.description,
    kind: 'sql',
    path: file,
    source,
    sha256,
    sqlText: source,
    ...normaliseDeclarations(file, header.touches, header.limits, header.critical),
    // One statement at a time, so the gate judges and runs exactly what the grammar cut.
    run: async ({ gate }) => {
      let rowsAffected = 0;
      for (const statement of statements) {
        try {
          const result = await gate({ sql: statement.text, parameters: [] });
          rowsAffected += Number(result.numAffectedRows ?? 0);
        } catch (error) {
          throw positionInFile(error, statement.offset);
        }
      }
      return { rowsAffected };
    },
  };
}

/** The server's error position counts from the statement; toRunError draws it into the whole file. */
function positionInFile(error: unknown, offset: number): unknown {
  const e = error as { position?: string } | null;
  if (e && typeof e === 'object' && e.position) e.position = String(Number(e.position) + offset);
  return error;
}

/** Scripts are TypeScript loaded at run time: users never build them. */
async function importDefinition(file: string): Promise<ScriptDefinition> {
  const ourIndex = fileURLToPath(new URL('../index.js', import.meta.url));
  const { createJiti } = await import('jiti');
  const jiti = createJiti(import.meta.url, {
    moduleCache: false,
    // A script imports 'safe-run' (and kysely) and must get this very installation.
    alias: { 'safe-run': ourIndex },
  });
  let loaded: unknown;
  try {
    loaded = await jiti.import(file, { default: true });
  } catch (error) {
    throw usageError(`Script ${file} could not be loaded: ${(error as Error).message}`, 'Fix the script; it must `export default defineScript({...})`.');
  }
  const def = loaded as Partial<ScriptDefinition>;
  if (!def || typeof def.run !== 'function' || typeof def.name !== 'string' || typeof def.touches !== 'object') {
    throw usageError(`Script ${file} does not export a script.`, 'It must `export default defineScript({ name, description, touches, run })`.');
  }
  return def as ScriptDefinition;
}

function normaliseDeclarations(
  file: string,
  touches: Readonly<Record<string, readonly Operation[]>>,
  limits: Readonly<Record<string, Partial<Record<Operation, number>>>>,
  critical: readonly string[],
): Pick<LoadedScript, 'touches' | 'limits' | 'critical'> {
  const keyed = <V>(record: Readonly<Record<string, V>>): Record<TableKey, V> =>
    Object.fromEntries(Object.entries(record).map(([name, value]) => [tableKey(name), value]));
  const normalised = { touches: keyed(touches), limits: keyed(limits), critical: critical.map(tableKey) };
  const undeclaredLimits = Object.keys(normalised.limits).filter((t) => !normalised.touches[t]);
  if (undeclaredLimits.length) {
    throw usageError(`Script ${file} sets limits on tables it does not declare in touches: ${undeclaredLimits.join(', ')}.`);
  }
  return normalised;
}
