import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { tableKey } from '../db/names.js';
import { usageError } from '../errors.js';
import type { Operation, TableKey } from '../records/index.js';
import type { Config } from '../config/config.js';
import { silentLogger, type Logger } from '../logger.js';
import { buildSandbox } from './child-sandbox.js';
import type { ScriptRunContext } from './gate.js';
import { runInChild } from './ipc-driver.js';
import { describeInChild, type Description } from './script-meta.js';
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
  /** The script may change catalog objects that belong to no declared table. */
  readonly ddl: boolean;
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

/**
 * What a TypeScript script's child needs from the config: the OS user it runs as when
 * safe-run is root, and the hang rule's limit (see ./ipc-driver.ts).
 */
export interface ScriptLoadOptions {
  readonly scriptUser?: string;
  readonly idleTimeoutMs?: number;
  /** Where the child's own stdout/stderr lines go while its declarations are read. */
  readonly log?: Logger;
}

export const scriptLoadOptions = (config: Pick<Config, 'scriptUser' | 'statementTimeoutMs'>): ScriptLoadOptions => ({
  scriptUser: config.scriptUser,
  idleTimeoutMs: config.statementTimeoutMs,
});

const DEFAULT_SCRIPT_USER = 'nobody';
const DEFAULT_IDLE_TIMEOUT_MS = 5 * 60_000;
/** Importing a module to read its declarations gets at least this long, however short the statement timeout. */
const MIN_DESCRIBE_MS = 60_000;

export async function loadScriptByName(name: string, dirs: readonly string[], options: ScriptLoadOptions = {}): Promise<LoadedScript> {
  const files = findScriptFiles(dirs);
  const file = files.get(name);
  if (!file) {
    const known = [...files.keys()];
    throw usageError(
      `Unknown script "${name}".`,
      known.length ? `Known scripts: ${known.join(', ')}. \`safe-run list\` shows what each does.` : `No scripts found in ${dirs.join(', ')}. Set "scriptsDir" in the config.`,
    );
  }
  return loadScriptFile(file, options);
}

export async function loadScriptFile(file: string, options: ScriptLoadOptions = {}): Promise<LoadedScript> {
  const [loaded] = await loadScriptFiles([file], options);
  if (loaded instanceof Error) throw loaded;
  return loaded!;
}

/**
 * Several scripts at once, for `list`: TypeScript declarations are read in one child, and
 * a script that fails to load is returned as its error so it does not hide the others.
 */
export async function loadScriptFiles(files: readonly string[], options: ScriptLoadOptions = {}): Promise<(LoadedScript | Error)[]> {
  const tsFiles = files.filter((file) => !file.endsWith('.sql'));
  const timeoutMs = Math.max(options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS, MIN_DESCRIBE_MS);
  const described = tsFiles.length
    ? await describeInChild(tsFiles, sandboxFor(tsFiles, options), timeoutMs, options.log ?? silentLogger)
    : new Map<string, Description>();
  return Promise.all(
    files.map(async (file) => {
      try {
        const source = readFileSync(file, 'utf8');
        const sha256 = createHash('sha256').update(source).digest('hex');
        if (file.endsWith('.sql')) return await sqlScript(file, source, sha256);
        return tsScript(file, source, sha256, described.get(file), options);
      } catch (error) {
        return error as Error;
      }
    }),
  );
}

function sandboxFor(files: readonly string[], options: ScriptLoadOptions): ReturnType<typeof buildSandbox> {
  return buildSandbox([...new Set(files.map((file) => path.dirname(path.resolve(file)) + path.sep))], options.scriptUser ?? DEFAULT_SCRIPT_USER);
}

/** The declarations come from the script's child; running it starts another child, so no script object ever lives here. */
function tsScript(file: string, source: string, sha256: string, description: Description | undefined, options: ScriptLoadOptions): LoadedScript {
  if (!description?.ok) {
    const message = description?.error.message ?? 'its declarations were not read';
    throw usageError(`Script ${file} could not be loaded: ${message}`, 'Fix the script; it must `export default defineScript({ name, description, touches, run })`.');
  }
  const { meta } = description;
  return {
    name: meta.name,
    description: meta.description,
    kind: 'ts',
    path: file,
    source,
    sha256,
    ...normaliseDeclarations(file, meta.touches, meta.limits, meta.critical),
    ddl: meta.ddl,
    run: (context: ScriptRunContext) =>
      runInChild(path.resolve(file), context, {
        sandbox: sandboxFor([file], options),
        idleTimeoutMs: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
      }),
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
    ddl: header.ddl,
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
