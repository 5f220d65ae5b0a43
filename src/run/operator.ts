import { execa } from 'execa';
import os from 'node:os';
import path from 'node:path';
import type { Operator, ScriptRecord } from '../records/index.js';

/**
 * Who ran it and what ran: facts from git, one `git` process each (a git start-up is 20-50 ms
 * of CPU, more on a busy machine). A guarded run starts both while the script loads.
 */

/** Who ran it: the OS user, plus the git identity of the working directory if there is one. */
export async function readOperator(cwd = process.cwd()): Promise<Operator> {
  // `--get` would answer the last value of each key; so does the last line of each here.
  const result = await execa('git', ['config', '--get-regexp', '^user\\.(name|email)$'], { cwd, reject: false });
  const values = new Map<string, string>();
  if (result.exitCode === 0) {
    for (const line of String(result.stdout).split('\n')) {
      const space = line.indexOf(' ');
      if (space > 0) values.set(line.slice(0, space).toLowerCase(), line.slice(space + 1).trim());
    }
  }
  return { osUser: os.userInfo().username, gitUser: values.get('user.name') || null, gitEmail: values.get('user.email') || null };
}

/**
 * The commit and dirty state of a script that lives in a git work tree. `status --branch`
 * in porcelain v2 names the commit on its `# branch.oid` line ("(initial)" before the first
 * commit, which has none to record), and lists the file below it if it differs from it.
 */
export async function scriptGitState(file: string): Promise<ScriptRecord['git']> {
  const dir = path.dirname(file);
  const status = await execa('git', ['-C', dir, 'status', '--porcelain=v2', '--branch', '--', path.basename(file)], { reject: false });
  if (status.exitCode !== 0) return null;
  const lines = String(status.stdout).split('\n');
  const commit = lines
    .find((line) => line.startsWith('# branch.oid '))
    ?.slice('# branch.oid '.length)
    .trim();
  if (!commit || !/^[0-9a-f]{40,64}$/.test(commit)) return null;
  return { commit, dirty: lines.some((line) => line !== '' && !line.startsWith('#')) };
}
