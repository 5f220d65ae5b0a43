import type { TableKey } from '../snapshot/types.js';

/** The checked config every command receives: defaults applied, paths absolute, env folded in. */
export interface Config {
  /** Where the config came from, for error messages; null when defaults only. */
  readonly file: string | null;
  /** Null when neither --db, the config nor DATABASE_URL gave one. */
  readonly databaseUrl: string | null;
  readonly scriptsDirs: readonly string[];
  readonly evidenceDir: string;
  readonly signingKey: string;
  readonly criticalTables: Readonly<Record<TableKey, { readonly maxDropPercent: number }>>;
  readonly backup: {
    readonly scope: 'touched' | 'full' | 'none';
    readonly compress: number;
    readonly jobs: number;
    readonly lockWaitTimeoutMs: number;
  };
  readonly exactCountThreshold: number;
  readonly statementTimeoutMs: number;
  readonly lockTimeoutMs: number;
  readonly pgBinDir: string | null;
  readonly environments: Readonly<
    Record<string, { readonly hostPattern: string; readonly requireReason: boolean; readonly confirm: boolean }>
  >;
}
