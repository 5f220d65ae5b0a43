/**
 * `npm run bench -- [--quick] [--tables N] [--rows N] [--row-bytes N] [--rounds N] [--json] [--only a,b] [--reuse]`.
 * Hand-parsed: a handful of flags do not justify pulling yargs' whole program model into
 * the bench, and unknown flags must fail loudly rather than silently bench the default.
 */
export interface BenchArgs {
  readonly tables: number;
  readonly rows: number;
  /**
   * How wide the generated tables' rows are, so a run can match a real schema's size (the
   * issue's billing schema: 3.6M rows in 3 GB, about 800 bytes a row). Unset: narrow rows.
   */
  readonly rowBytes: number | null;
  readonly rounds: number;
  /** Rounds for the comparisons that dump the whole database (several seconds each). */
  readonly backupRounds: number;
  readonly json: boolean;
  readonly quick: boolean;
  /** Keep the bench databases and reuse them next time when their sizes match (with DATABASE_URL). */
  readonly reuse: boolean;
  /** Only these comparisons (snapshot, growth, cli, guard, ipc, backup, parallel, verify, blame, rss, startup, pitr, store). */
  readonly only: ReadonlySet<string> | null;
}

export const COMPARISONS = [
  'snapshot',
  'growth',
  'cli',
  'guard',
  'ipc',
  'backup',
  'parallel',
  'verify',
  'blame',
  'rss',
  'startup',
  'ledger',
  'pitr',
  'store',
] as const;

const USAGE =
  'usage: bench [--quick] [--tables N] [--rows N] [--row-bytes N] [--rounds N] [--backup-rounds N] [--json] [--reuse] [--only snapshot,growth,cli,guard,ipc,backup,parallel,verify,blame,rss,startup,ledger,pitr,store]';

export function parseBenchArgs(argv: readonly string[]): BenchArgs {
  const quick = argv.includes('--quick');
  const values: Record<string, string> = {};
  const flags = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--quick' || arg === '--json' || arg === '--reuse') flags.add(arg);
    else if (['--tables', '--rows', '--row-bytes', '--rounds', '--backup-rounds', '--only'].includes(arg) && argv[i + 1] !== undefined)
      values[arg] = argv[++i]!;
    else throw new Error(`unknown argument ${arg}\n${USAGE}`);
  }
  const int = (name: string, fallback: number): number => {
    const raw = values[name];
    if (raw === undefined) return fallback;
    const n = Number(raw.replace(/_/g, ''));
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name} needs a positive integer, got ${raw}\n${USAGE}`);
    return n;
  };
  const only = values['--only'] ? new Set(values['--only'].split(',')) : null;
  for (const name of only ?? []) {
    if (!(COMPARISONS as readonly string[]).includes(name)) throw new Error(`unknown comparison ${name}\n${USAGE}`);
  }
  return {
    tables: int('--tables', quick ? 20 : 200),
    rows: int('--rows', quick ? 200_000 : 10_000_000),
    rowBytes: values['--row-bytes'] === undefined ? null : int('--row-bytes', 0),
    rounds: int('--rounds', 5),
    backupRounds: int('--backup-rounds', quick ? 5 : 3),
    json: flags.has('--json'),
    quick,
    reuse: flags.has('--reuse'),
    only,
  };
}

export function wants(args: BenchArgs, comparison: (typeof COMPARISONS)[number]): boolean {
  return args.only === null || args.only.has(comparison);
}
