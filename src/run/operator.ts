import { execa } from 'execa';
import os from 'node:os';
import path from 'node:path';
import type { Operator, ScriptRecord } from '../records/index.js';

/** Who ran it: the OS user, plus the git identity of the working directory if there is one. */
export async function readOperator(cwd = process.cwd()): Promise<Operator> {
  const [gitUser, gitEmail] = await Promise.all([gitConfig(cwd, 'user.name'), gitConfig(cwd, 'user.email')]);
  return { osUser: os.userInfo().username, gitUser, gitEmail };
}

/** The commit and dirty state of a script that lives in a git work tree. */
export async function scriptGitState(file: string): Promise<ScriptRecord['git']> {
  const dir = path.dirname(file);
  const head = await execa('git', ['-C', dir, 'rev-parse', 'HEAD'], { reject: false });
  if (head.exitCode !== 0) return null;
  const status = await execa('git', ['-C', dir, 'status', '--porcelain', '--', path.basename(file)], { reject: false });
  return { commit: String(head.stdout).trim(), dirty: String(status.stdout).trim() !== '' };
}

async function gitConfig(cwd: string, key: string): Promise<string | null> {
  const result = await execa('git', ['config', '--get', key], { cwd, reject: false });
  return result.exitCode === 0 ? String(result.stdout).trim() || null : null;
}
