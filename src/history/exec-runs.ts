import type { AuditRecord, BackupRecord, ExecIntentBody, ExecStatus, ExecTableChange, Operator, TableKey } from '../records/index.js';
import { refOf, type EntryRef } from './entry-ref.js';

/**
 * `safe-run exec` runs (an external command such as `npm run db:reset`, wrapped in
 * snapshots). They are not guarded runs: blame still says "outside any guarded run" for
 * what happened inside one, but names the exec, which is most of the answer.
 */
export interface ExecSummary {
  readonly runId: string;
  readonly intent: {
    readonly ref: EntryRef;
    readonly name: string;
    readonly operator: Operator;
    readonly reason: string | null;
    readonly databaseKey: string;
    readonly backup: Pick<BackupRecord, 'status' | 'scope' | 'path' | 'sha256' | 'tables'>;
  };
  readonly outcome: {
    readonly ref: EntryRef;
    readonly status: ExecStatus;
    readonly changes: Readonly<Record<TableKey, ExecTableChange>>;
  } | null;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export class ExecCollector {
  private readonly byId = new Map<string, Mutable<ExecSummary>>();

  add(entry: AuditRecord): void {
    if (!entry.runId) return;
    if (entry.kind === 'exec.intent') {
      const b = entry.body;
      this.byId.set(entry.runId, {
        runId: entry.runId,
        intent: {
          ref: refOf(entry),
          name: execName(b),
          operator: b.operator,
          reason: b.reason,
          databaseKey: b.snapshot.database.key,
          backup: { status: b.backup.status, scope: b.backup.scope, path: b.backup.path, sha256: b.backup.sha256, tables: b.backup.tables },
        },
        outcome: null,
      });
    } else if (entry.kind === 'exec.outcome') {
      const exec = this.byId.get(entry.runId);
      if (exec) exec.outcome = { ref: refOf(entry), status: entry.body.status, changes: entry.body.changes };
    }
  }

  get execs(): ExecSummary[] {
    return [...this.byId.values()];
  }
}

/** `exec "npm run db:reset"`, or its --label when it has one. */
export function execName(body: Pick<ExecIntentBody, 'label' | 'command'>): string {
  return `exec "${body.label ?? body.command.join(' ')}"`;
}
