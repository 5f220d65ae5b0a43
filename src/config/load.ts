import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { errorMessage, usageError } from '../errors.js';
import { tableKey } from '../db/names.js';
import { DEFAULT_MAX_DROP_PERCENT, DEFAULT_MAX_UPDATE_PERCENT, type Config, type PgBackRestConfig } from './config.js';
import { parseDurationMs } from './duration.js';
import { rawConfigSchema, type RawConfig } from './schema.js';

export interface ConfigSources {
  /** --config */
  readonly configPath?: string;
  /** --db */
  readonly db?: string;
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
}

export const CONFIG_FILE_NAMES: readonly string[] = [
  'safe-run.config.ts',
  'safe-run.config.js',
  'safe-run.config.mjs',
  'safe-run.config.json',
];

export async function loadConfig(sources: ConfigSources = {}): Promise<Config> {
  const cwd = sources.cwd ?? process.cwd();
  const env = sources.env ?? process.env;
  const found = findConfigFile(cwd, sources.configPath, env);
  const raw = found.file ? validate(await readRawConfig(found.file), found.file) : {};
  return { ...resolveConfig(raw, found.file, cwd, env, sources.db), searched: found.searched };
}

interface FoundConfig {
  readonly file: string | null;
  /** Where discovery looked, for "no evidence here" messages: the directories walked, or the named file. */
  readonly searched: readonly string[];
}

/**
 * Like git finds its repository: --config, then SAFE_RUN_CONFIG, then safe-run.config.* in
 * the working directory and each parent. A cron job or an operator in a subdirectory thus
 * reads the one log the project keeps, instead of starting an empty one where it stands.
 */
export function findConfigFile(cwd: string, explicit?: string, env: NodeJS.ProcessEnv = process.env): FoundConfig {
  const named = explicit ?? (env.SAFE_RUN_CONFIG || undefined);
  if (named) {
    const file = path.resolve(cwd, expandHome(named));
    const via = explicit ? '--config' : 'SAFE_RUN_CONFIG';
    if (!existsSync(file)) throw usageError(`Config file not found: ${file} (from ${via}).`, `Check the ${via} path.`);
    return { file, searched: [file] };
  }
  const searched: string[] = [];
  for (let dir = path.resolve(cwd); ; dir = path.dirname(dir)) {
    searched.push(dir);
    for (const name of CONFIG_FILE_NAMES) {
      const candidate = path.join(dir, name);
      if (existsSync(candidate)) return { file: candidate, searched };
    }
    if (path.dirname(dir) === dir) return { file: null, searched };
  }
}

async function readRawConfig(file: string): Promise<unknown> {
  if (file.endsWith('.json')) {
    const text = readFileSync(file, 'utf8');
    try {
      return JSON.parse(text);
    } catch (error) {
      throw usageError(`${file}: malformed JSON: ${errorMessage(error)}`, `Fix the syntax (\`jq . ${file}\` shows where).`);
    }
  }
  try {
    // Loaded on demand: most commands never read a TypeScript config, and start-up time counts.
    // Required, not imported: a process started from the start-up snapshot has no import().
    const { createJiti } = createRequire(import.meta.url)('jiti') as typeof import('jiti');
    const jiti = createJiti(import.meta.url, { moduleCache: false });
    return await jiti.import(file, { default: true });
  } catch (error) {
    throw usageError(`${file}: could not be loaded: ${errorMessage(error)}`, 'Fix the file so that it default-exports the config object.');
  }
}

/** Every problem at once, each naming the key and the file. */
function validate(value: unknown, file: string): RawConfig {
  const result = rawConfigSchema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      const parent = issue.path.length ? `${issue.path.join('.')}.` : '';
      return issue.keys.map((k) => `unknown key "${parent}${k}"`).join('; ');
    }
    const key = issue.path.length ? issue.path.join('.') : '(top level)';
    return `"${key}": ${issue.message}`;
  });
  throw usageError(`${file}: ${problems.join('; ')}`, 'See "Configuration" in the README for the valid keys.');
}

function resolveConfig(raw: RawConfig, file: string | null, cwd: string, env: NodeJS.ProcessEnv, db?: string): Omit<Config, 'searched'> {
  // Relative paths in a config file are relative to that file, not to wherever cron runs us.
  const base = file ? path.dirname(file) : cwd;
  const resolvePath = (p: string): string => path.resolve(base, expandHome(p));
  const scriptsDirs = raw.scriptsDir === undefined ? ['scripts'] : Array.isArray(raw.scriptsDir) ? raw.scriptsDir : [raw.scriptsDir];
  const configHome = env.XDG_CONFIG_HOME ?? path.join(os.homedir(), '.config');
  return {
    file,
    databaseUrl: db ?? raw.database ?? env[raw.databaseEnv ?? 'DATABASE_URL'] ?? null,
    scriptsDirs: scriptsDirs.map(resolvePath),
    evidenceDir: env.SAFE_RUN_EVIDENCE_DIR ? path.resolve(cwd, env.SAFE_RUN_EVIDENCE_DIR) : resolvePath(raw.evidenceDir ?? 'snapshots'),
    signingKey: env.SAFE_RUN_SIGNING_KEY
      ? path.resolve(cwd, expandHome(env.SAFE_RUN_SIGNING_KEY))
      : raw.signingKey
        ? resolvePath(raw.signingKey)
        : path.join(configHome, 'safe-run', 'signing.key'),
    criticalTables: Object.fromEntries(
      Object.entries(raw.criticalTables ?? {}).map(([name, rule]) => [
        tableKey(name),
        {
          maxDropPercent: rule.maxDropPercent ?? DEFAULT_MAX_DROP_PERCENT,
          maxUpdatePercent: rule.maxUpdatePercent ?? DEFAULT_MAX_UPDATE_PERCENT,
        },
      ]),
    ),
    backup: {
      scope: raw.backup?.scope ?? 'guarded',
      // Level 1, not pg_dump's 6: the backup sits between the operator and the script, and on
      // the bench's realistic rows level 6 took twice as long for an archive 7 % smaller.
      compress: raw.backup?.compress ?? 1,
      jobs: raw.backup?.jobs ?? 1,
      lockWaitTimeoutMs: parseDurationMs(raw.backup?.lockWaitTimeout ?? '30s'),
      mode: raw.backup?.mode ?? 'pg_dump',
      pgbackrest: raw.backup?.mode === 'pgbackrest' && raw.backup.pgbackrest ? pgBackRestConfig(raw.backup.pgbackrest, resolvePath) : null,
    },
    exactCountThreshold: raw.exactCountThreshold ?? 1_000_000,
    exactTables: [...new Set((raw.exactTables ?? []).map(tableKey))],
    statementTimeoutMs: parseDurationMs(raw.statementTimeout ?? '5min'),
    lockTimeoutMs: parseDurationMs(raw.lockTimeout ?? '10s'),
    pgBinDir: raw.pgBinDir ? resolvePath(raw.pgBinDir) : null,
    scriptRole: raw.scriptRole ?? null,
    scriptDatabaseUrl: raw.scriptDatabaseUrl ?? null,
    scriptUser: raw.scriptUser ?? 'nobody',
    trustedKeys: raw.trustedKeys ?? [],
    witness: (raw.witness ?? []).map((w) => ({ command: w.command, required: w.required ?? false })),
    evidenceStore: env.SAFE_RUN_EVIDENCE_STORE || raw.evidence?.store || 'file',
    protect: { tables: (raw.protect?.tables ?? []).map(tableKey), keepRows: (raw.protect?.keepRows ?? []).map(tableKey) },
    ledger: {
      statementText: raw.ledger?.statementText === 'fingerprint' ? 'fingerprint' : 'text',
      keepRowsMax: raw.ledger?.keepRowsMax ?? 100_000,
    },
    environments: Object.fromEntries(
      Object.entries(raw.environments ?? {}).map(([name, e]) => [
        name,
        { hostPattern: e.hostPattern, requireReason: e.requireReason ?? false, confirm: e.confirm ?? false },
      ]),
    ),
  };
}

function pgBackRestConfig(
  raw: NonNullable<NonNullable<RawConfig['backup']>['pgbackrest']>,
  resolvePath: (p: string) => string,
): PgBackRestConfig {
  return {
    stanza: raw.stanza,
    configPath: raw.configPath ? resolvePath(raw.configPath) : null,
    type: raw.type ?? null,
    archiveTimeoutMs: parseDurationMs(raw.archiveTimeout ?? '60s'),
  };
}

function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? path.join(os.homedir(), p.slice(1)) : p;
}
