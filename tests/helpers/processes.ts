import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * This process's children that are script children (by their entry: child/main.js in tsc's
 * tree, bundle/child.js when the child starts from its snapshot), read from /proc: what leaks
 * if a run misses disposing one.
 */
export function scriptChildren(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The command name may hold spaces and parentheses: the ppid is the second field after the last ')'.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== process.pid) continue;
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes(`child${path.sep}main.js`) || cmdline.includes(`bundle${path.sep}child.js`)) pids.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}
