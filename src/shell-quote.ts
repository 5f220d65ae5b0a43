/**
 * Every command safe-run suggests is meant to be pasted into a shell at 3 a.m., so each
 * argument is quoted as a shell needs it: bare when it is plain, in double quotes when that
 * is enough (`safe-run blame "weird child"`), in single quotes otherwise.
 */
export function shellQuote(arg: string): string {
  if (arg !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  if (!/[$`"\\!]/.test(arg)) return `"${arg}"`;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** `safe-run <args…>` with each argument quoted: `suggest('blame', 'weird child')`. */
export function suggest(...args: readonly string[]): string {
  return ['safe-run', ...args.map(shellQuote)].join(' ');
}

/** A table as an operator types it: `users` for public.users, `audit.events` otherwise. */
export function typedTable(table: string): string {
  return table.startsWith('public.') ? table.slice('public.'.length) : table;
}
