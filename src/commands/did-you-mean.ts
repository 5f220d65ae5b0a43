import { usageError, type SafeRunError } from '../errors.js';
import { byCodeUnit } from '../text-order.js';

/**
 * `safe-run chek` is a typo far more often than a script called "chek": name what was
 * probably meant, among the commands and the scripts alike.
 */
export function unknownCommandOrScript(
  word: string,
  scripts: readonly string[],
  commands: readonly string[],
  scriptsDirs: readonly string[],
): SafeRunError {
  const what = commands.length ? 'command or script' : 'script';
  const guesses = closest(word, [...commands, ...scripts]);
  const message = `Unknown ${what} "${word}".${guesses.length ? ` Did you mean: ${guesses.join(', ')}?` : ''}`;
  const where = commands.length ? ' `safe-run --help` lists the commands.' : '';
  const hint = scripts.length
    ? `Known scripts: ${scripts.join(', ')}. \`safe-run list\` shows what each does.${where}`
    : `No scripts found in ${scriptsDirs.join(', ')}. Set "scriptsDir" in the config.${where}`;
  return usageError(message, hint);
}

/** The candidates within a small edit distance (a transposition counts once), nearest first. */
export function closest(word: string, candidates: readonly string[], limit = 3): string[] {
  const lower = word.toLowerCase();
  const allowed = lower.length <= 3 ? 1 : lower.length <= 6 ? 2 : 3;
  return [...new Set(candidates)]
    .map((c) => ({ c, d: editDistance(lower, c.toLowerCase()) }))
    .filter(({ c, d }) => d <= allowed || (lower.length >= 3 && c.toLowerCase().startsWith(lower)))
    .sort((a, b) => a.d - b.d || byCodeUnit(a.c, b.c))
    .slice(0, limit)
    .map(({ c }) => c);
}

/** Optimal string alignment distance: insertions, deletions, substitutions, adjacent swaps. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}
