import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { tableKey } from '../db/names.js';
import { usageError, errorMessage } from '../errors.js';
import type { Operation, TableKey } from '../records/index.js';
import type { Config } from '../config/config.js';
import { silentLogger, type Logger } from '../logger.js';
import { buildSandbox } from './child-sandbox.js';
import type { ScriptRunContext } from './gate.js';
import { startScriptChild, type ScriptChild } from './child-process.js';
import type { ScriptSource } from './child/protocol.js';
import { runInChild } from './ipc-driver.js';
import { describeInChild, type Description } from './script-meta.js';
import { parseSqlHeader } from './sql-header.js';
import { policyError, refusalsIn, splitStatements, type SqlStatement } from '../guard/statement-policy.js';

/** A script ready to run: declarations normalised to `schema.table` keys. */
export interface LoadedScript {
  readonly name: string;
  readonly description: string;
  /** builtin: safe-run's own re-insert engine (restore --in-place, undo, recover). */
  readonly kind: 'ts' | 'sql' | 'builtin';
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
  /**
   * A .sql script loaded with `judgeLater`: parses and judges its statements on the first call
   * (later calls share it), and rejects with the statement policy's refusal. Absent otherwise:
   * the script was judged whole as it loaded.
   */
  readonly judge?: () => Promise<void>;
  run(context: ScriptRunContext): Promise<unknown>;
  /**
   * Stops the TypeScript child kept idle since the declarations were read, when the run ends
   * without running the script (backup failed, lock held, interrupt, any error). Idempotent;
   * a no-op for SQL and after `run`, which consumes the child.
   */
  dispose(): Promise<void>;
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
  /**
   * A .sql script's statements are judged on `judge()`, not as it loads: a guarded run reads
   * the header's declarations at once, and parses the statements while pg_dump runs.
   */
  readonly judgeLater?: boolean;
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
      known.length
        ? `Known scripts: ${known.join(', ')}. \`safe-run list\` shows what each does.`
        : `No scripts found in ${dirs.join(', ')}. Set "scriptsDir" in the config.`,
    );
  }
  return loadScriptFile(file, options);
}

/** One script for a guarded run: a TypeScript script keeps the child that read its declarations, to run in. */
export async function loadScriptFile(file: string, options: ScriptLoadOptions = {}): Promise<LoadedScript> {
  const [loaded] = await loadScripts([file], options, true);
  if (loaded instanceof Error) throw loaded;
  return loaded!;
}

/**
 * Several scripts at once, for `list` and `doctor`: TypeScript declarations are read in one
 * child, closed right after, and a script that fails to load is returned as its error so it
 * does not hide the others.
 */
export function loadScriptFiles(files: readonly string[], options: ScriptLoadOptions = {}): Promise<(LoadedScript | Error)[]> {
  return loadScripts(files, options, false);
}

/**
 * Each file is read once: that text is hashed for the intent, parsed (SQL) or sent to the
 * child (TypeScript), which reads the declarations from it and later runs it. Nothing reads
 * the file again, so an edit after this point cannot change what runs.
 */
async function loadScripts(files: readonly string[], options: ScriptLoadOptions, keepChild: boolean): Promise<(LoadedScript | Error)[]> {
  const read = files.map((file): ScriptSource | Error => {
    try {
      return { file, source: readFileSync(file, 'utf8') };
    } catch (error) {
      return error as Error;
    }
  });
  const ts = read.filter((r): r is ScriptSource => !(r instanceof Error) && !r.file.endsWith('.sql'));
  const child = ts.length
    ? startScriptChild(
        sandboxFor(
          ts.map((s) => s.file),
          options,
        ),
        options.log ?? silentLogger,
      )
    : undefined;
  let kept: ScriptChild | undefined;
  try {
    const timeoutMs = Math.max(options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS, MIN_DESCRIBE_MS);
    // The child is given absolute paths: its cwd is the script's directory, not ours.
    const describing = child
      ? describeInChild(
          child,
          ts.map((s) => ({ file: path.resolve(s.file), source: s.source })),
          timeoutMs,
        )
      : Promise.resolve(new Map<string, Description>());
    // Not awaited before the SQL scripts: their parser's WASM compiles while the child starts.
    describing.catch(() => {});
    const loaded = await Promise.all(
      read.map(async (r) => {
        if (r instanceof Error) return r;
        try {
          const sha256 = createHash('sha256').update(r.source).digest('hex');
          if (r.file.endsWith('.sql')) return await sqlScript(r.file, r.source, sha256, options.judgeLater ?? false);
          const described = await describing;
          const idle = keepChild && ts.length === 1 ? child : undefined;
          const script = tsScript(r.file, r.source, sha256, described.get(path.resolve(r.file)), idle, options);
          kept = idle;
          return script;
        } catch (error) {
          return error as Error;
        }
      }),
    );
    kept?.hold(false);
    return loaded;
  } finally {
    if (child && child !== kept) child.kill();
  }
}

function sandboxFor(files: readonly string[], options: ScriptLoadOptions): ReturnType<typeof buildSandbox> {
  return buildSandbox(
    [...new Set(files.map((file) => path.dirname(path.resolve(file)) + path.sep))],
    options.scriptUser ?? DEFAULT_SCRIPT_USER,
  );
}

/**
 * The declarations come from the script's child, which stays idle (when `idle` is given) to
 * run it: a guarded run starts one Node child, not two. A second `run`, or one after the idle
 * child died, starts a fresh child on the same source. No script object ever lives here.
 */
function tsScript(
  file: string,
  source: string,
  sha256: string,
  description: Description | undefined,
  idle: ScriptChild | undefined,
  options: ScriptLoadOptions,
): LoadedScript {
  if (!description?.ok) {
    const message = description?.error.message ?? 'its declarations were not read';
    throw usageError(
      `Script ${file} could not be loaded: ${message}`,
      'Fix the script; it must `export default defineScript({ name, description, touches, run })`.',
    );
  }
  const { meta } = description;
  let waiting = idle;
  const take = (): ScriptChild | undefined => {
    const child = waiting;
    waiting = undefined;
    return child;
  };
  return {
    name: meta.name,
    description: meta.description,
    kind: 'ts',
    path: file,
    source,
    sha256,
    ...normaliseDeclarations(file, meta.touches, meta.limits, meta.critical),
    ddl: meta.ddl,
    run: (context: ScriptRunContext) => {
      const child = take() ?? startScriptChild(sandboxFor([file], options), context.log);
      return runInChild(child, { file: path.resolve(file), source }, context, {
        idleTimeoutMs: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
      });
    },
    dispose: async () => {
      const child = take();
      if (!child) return;
      // Held while it dies: an unheld child lets the event loop empty before 'exit' arrives,
      // and the process would end (exit 0) before the error that led here is reported.
      child.hold(true);
      child.kill();
      await child.exited;
    },
  };
}

async function sqlScript(file: string, source: string, sha256: string, judgeLater: boolean): Promise<LoadedScript> {
  // Judged whole before any of it runs: one refused statement and none of the file runs.
  let judging: Promise<readonly SqlStatement[]> | null = null;
  const judged = (): Promise<readonly SqlStatement[]> => (judging ??= judgeStatements(file, source));
  if (!judgeLater) await judged();
  let header;
  try {
    header = parseSqlHeader(source, file);
  } catch (error) {
    throw usageError(`Bad script header: ${errorMessage(error)}`, 'See "Scripts" in the README for the header format.');
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
    ...(judgeLater ? { judge: async () => void (await judged()) } : {}),
    dispose: async () => {},
    // One statement at a time, so the gate judges and runs exactly what the grammar cut.
    run: async ({ gate }) => {
      let rowsAffected = 0;
      for (const statement of await judged()) {
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

async function judgeStatements(file: string, source: string): Promise<readonly SqlStatement[]> {
  const statements = await splitStatements(source, `Script ${file}`);
  const refusals = refusalsIn(statements);
  if (refusals.length) throw policyError(refusals, `Script ${file}`);
  return statements;
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
