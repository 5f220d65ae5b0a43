import type { RestoreBody } from '../records/index.js';

export interface RestoreOptions {
  /** A run id or a unique prefix of one. */
  readonly run: string;
  /** --table; empty means every table of the backup. */
  readonly tables: readonly string[];
  /** --into: an existing database whose named tables exist and are empty. */
  readonly into?: string | null;
}

/** What `restore` returns and prints with --json: the entry body without the snapshot, plus where the entry is. */
export interface RestoreResult extends Omit<RestoreBody, 'snapshot'> {
  readonly entry: { readonly seq: number; readonly hash: string };
  /** What to do next, each command with the full connection it is meant for (db/conninfo.ts). */
  readonly next: readonly string[];
}
