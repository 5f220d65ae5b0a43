import type { AuditRecord } from '../records/index.js';
import { ExitCode, SafeRunError, usageError } from '../errors.js';

/**
 * The entries of one run, found by its id or a unique prefix of it. Only one run's entries
 * are kept: a prefix as short as "0" must not make the whole log stay in memory.
 */
export class RunEntriesCollector {
  private readonly ids: string[] = [];
  private readonly entries: AuditRecord[] = [];
  /** Entries of other kinds that name the run in their body (a `restore` from its backup). */
  private readonly related: { readonly named: string; readonly entry: AuditRecord }[] = [];

  constructor(private readonly prefix: string) {}

  add(entry: AuditRecord): void {
    const id = entry.runId;
    if (id?.startsWith(this.prefix)) {
      if (!this.ids.includes(id)) this.ids.push(id);
      if (id === this.ids[0]) this.entries.push(entry);
      return;
    }
    if (entry.kind === 'restore' && entry.body.runId.startsWith(this.prefix)) this.related.push({ named: entry.body.runId, entry });
    if (entry.kind === 'prune') {
      for (const p of entry.body.pruned) if (p.runId.startsWith(this.prefix)) this.related.push({ named: p.runId, entry });
    }
  }

  /** The run's entries in log order, or a usage error naming the problem. */
  result(evidenceDir: string): {
    readonly runId: string;
    readonly entries: readonly AuditRecord[];
    readonly related: readonly AuditRecord[];
  } {
    if (this.ids.length === 0) {
      throw new SafeRunError(`No run ${this.prefix} in ${evidenceDir}.`, ExitCode.usage, '`safe-run log` lists the runs and their ids.');
    }
    if (this.ids.length > 1) {
      const shown = this.ids.slice(0, 8).join(', ');
      throw usageError(
        `"${this.prefix}" matches ${this.ids.length} runs (${shown}${this.ids.length > 8 ? ', …' : ''}).`,
        'Give more characters of the run id.',
      );
    }
    const runId = this.ids[0]!;
    return { runId, entries: this.entries, related: this.related.filter((r) => r.named === runId).map((r) => r.entry) };
  }
}
