import { execFileSync } from 'node:child_process';
import { shellQuote, suggest } from '../src/shell-quote.js';

/** Suggested commands are pasted into a shell: each argument must reach the program unchanged. */
describe('shellQuote', () => {
  it('leaves plain words bare and quotes the rest as a shell needs', () => {
    expect(suggest('blame', 'users')).toBe('safe-run blame users');
    expect(suggest('blame', 'weird child')).toBe('safe-run blame "weird child"');
    expect(suggest('restore', '01J', '--table', 'audit.events')).toBe('safe-run restore 01J --table audit.events');
    expect(shellQuote('')).toBe('""');
  });

  it('round-trips through /bin/sh for spaces, quotes, dollars, backticks and backslashes', () => {
    for (const arg of ['weird child', "it's", 'say "hi"', '$HOME', '`id`', 'a\\b', 'semi;colon', '"Mixed Case".t', '!bang', '*']) {
      const echoed = execFileSync('/bin/sh', ['-c', `printf '%s' ${shellQuote(arg)}`], { encoding: 'utf8' });
      expect(echoed).toBe(arg);
    }
  });
});
