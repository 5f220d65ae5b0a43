import type { TableKey } from '../records/index.js';

/** The checked config every command receives: defaults applied, paths absolute, env folded in. */
export interface Config {
  /** Where the config came from, for error messages; null when defaults only. */
  readonly file: string | null;
  /** Where config discovery looked (the directories walked up, or the named file). */
  readonly searched?: readonly string[];
  /** Null when neither --db, the config nor DATABASE_URL gave one. */
  readonly databaseUrl: string | null;
  readonly scriptsDirs: readonly string[];
  readonly evidenceDir: string;
  readonly signingKey: string;
  readonly criticalTables: Readonly<Record<TableKey, CriticalTableRule>>;
  readonly backup: {
    /** guarded: declared + critical tables and their cascade closure (the default). */
    readonly scope: 'guarded' | 'touched' | 'full' | 'none';
    readonly compress: number;
    readonly jobs: number;
    readonly lockWaitTimeoutMs: number;
    readonly mode: 'pg_dump' | 'pgbackrest';
    /** Set exactly when mode is "pgbackrest". */
    readonly pgbackrest: PgBackRestConfig | null;
  };
  /** `snapshot --exact` counts every table estimated at or below this. */
  readonly exactCountThreshold: number;
  /** Counted exactly by `snapshot` and `check` (and every run's snapshots), besides the critical tables. */
  readonly exactTables: readonly TableKey[];
  readonly statementTimeoutMs: number;
  readonly lockTimeoutMs: number;
  readonly pgBinDir: string | null;
  /** Null: the script's session uses the runner's own login (recorded as trust "superuser" when it is one). */
  readonly scriptRole: string | null;
  readonly scriptDatabaseUrl: string | null;
  readonly scriptUser: string;
  readonly trustedKeys: readonly string[];
  readonly witness: readonly { readonly command: string; readonly required: boolean }[];
  /** "file": audit.jsonl in evidenceDir; otherwise the URL of the shared evidence database (may hold a password: never log it raw). */
  readonly evidenceStore: string;
  readonly protect: { readonly tables: readonly TableKey[]; readonly keepRows: readonly TableKey[] };
  readonly ledger: { readonly statementText: 'text' | 'fingerprint'; readonly keepRowsMax: number };
  readonly environments: Readonly<
    Record<string, { readonly hostPattern: string; readonly requireReason: boolean; readonly confirm: boolean }>
  >;
}

export interface CriticalTableRule {
  /** A run may not remove more than this share of the table's rows (default 10). */
  readonly maxDropPercent: number;
  /** A run may not update more than this share of the table's rows (default 50). */
  readonly maxUpdatePercent: number;
}

export const DEFAULT_MAX_DROP_PERCENT = 10;
export const DEFAULT_MAX_UPDATE_PERCENT = 50;

export interface PgBackRestConfig {
  readonly stanza: string;
  /** pgBackRest's own config file (its --config); null: pgBackRest's default lookup. */
  readonly configPath: string | null;
  /** "incr": an incremental backup before every run; null: rely on the scheduled backups. */
  readonly type: 'incr' | null;
  /** How long a run waits after COMMIT for the archive to hold the commit's WAL. */
  readonly archiveTimeoutMs: number;
}
