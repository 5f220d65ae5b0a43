import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { usageError } from '../errors.js';
import { BUNDLE_DIR, OWN_BUILD_DIR, ownEntry } from '../own-build.js';
import { blobFits } from '../startup-blob.js';

/**
 * How a TypeScript script's child is confined (SPEC "Scripts"; README "How a TypeScript
 * script runs"). The child reads only the script's directory and the code it needs, writes
 * nothing, starts no process, thread or addon, holds no credential in its environment and,
 * when safe-run runs as root, runs as `scriptUser` so the 0600 signing key stays unreadable
 * whatever the permission model would allow.
 */
export interface ChildSandbox {
  /** The child's entry; Node's argv[1] only, when the child starts from its start-up snapshot. */
  readonly main: string;
  readonly execArgv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly uid?: number;
  readonly gid?: number;
  readonly cwd: string;
}

/** The child's entry: child/main.js beside this module in tsc's tree, child.js in the bundle. */
const CHILD_MAIN = ownEntry('script/child/main.js', 'child.js');
/** The child's start-up snapshot: sucrase and jiti already loaded (child/startup-snapshot.ts). */
const CHILD_BLOB = path.join(BUNDLE_DIR, 'child.blob');

/** Variables a script may see. Everything else (DATABASE_URL, PG*, SAFE_RUN_*, NODE_OPTIONS, tokens) stays behind. */
const ENV_ALLOW = ['PATH', 'LANG', 'LANGUAGE', 'LC_ALL', 'LC_CTYPE', 'LC_MESSAGES', 'TZ', 'NODE_ENV'];

export function buildSandbox(scriptDirs: readonly string[], scriptUser: string): ChildSandbox {
  const user = process.getuid?.() === 0 ? lookupUser(scriptUser) : undefined;
  const snapshot = startsFromSnapshot(user);
  const readable = [...new Set([...scriptDirs, ...moduleDirs(snapshot)])];
  if (user) for (const dir of readable) assertReadableBy(dir, user, scriptUser);
  return {
    main: snapshot ? path.join(BUNDLE_DIR, 'child.js') : CHILD_MAIN,
    execArgv: [
      // From a snapshot Node prints the permission model's ExperimentalWarning whatever
      // --disable-warning says; the child's stderr is the run's log, so warnings are off there.
      ...(snapshot ? ['--snapshot-blob', CHILD_BLOB, '--no-warnings'] : []),
      permissionFlag(),
      ...readable.map((dir) => `--allow-fs-read=${dir}`),
      '--disable-warning=ExperimentalWarning',
    ],
    env: Object.fromEntries(ENV_ALLOW.flatMap((key) => (process.env[key] !== undefined ? [[key, process.env[key]!]] : []))),
    ...(user ? { uid: user.uid, gid: user.gid } : {}),
    cwd: scriptDirs[0]!,
  };
}

/** Node 22 made the permission model stable as `--permission`; Node 20 only knows the experimental flag. */
function permissionFlag(): string {
  return process.allowedNodeEnvironmentFlags.has('--permission') ? '--permission' : '--experimental-permission';
}

/**
 * What the child loads: safe-run's own build (the child entry and the `safe-run` alias) and
 * the installed packages (jiti and sucrase, which transpile the script in memory, kysely,
 * and whatever else a script imports). Nothing secret lives there. Trailing separators make
 * each an allowed directory rather than one file.
 */
function moduleDirs(snapshot: boolean): string[] {
  const own = snapshot ? [OWN_BUILD_DIR, BUNDLE_DIR] : [OWN_BUILD_DIR];
  return [...own, path.dirname(packageDir('jiti'))].map((dir) => (dir.endsWith(path.sep) ? dir : dir + path.sep));
}

/**
 * The child starts from its snapshot when the build made one with this Node, whichever tree
 * the runner runs from: the child is a process of its own and shares no module with it. A
 * child that runs as another user must be able to read the blob, or Node would not start.
 */
function startsFromSnapshot(user: OsUser | undefined): boolean {
  if (!blobFits(CHILD_BLOB, BUNDLE_DIR)) return false;
  return user === undefined || (statSync(CHILD_BLOB).mode & 0o004) !== 0;
}

function packageDir(name: string): string {
  let dir = path.dirname(fileURLToPath(import.meta.resolve(name)));
  while (path.basename(dir) !== name && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}

interface OsUser {
  readonly uid: number;
  readonly gid: number;
}

/**
 * The script user's ids. /etc/passwd answers for the usual local user without starting a
 * process (this runs before the child can start, and `id` is two process start-ups that
 * block the event loop); a user only the name service knows (LDAP, sssd) is asked of `id`.
 */
function lookupUser(name: string): OsUser {
  const local = passwdEntry(name);
  if (local) return local;
  try {
    const id = (flag: string): number =>
      Number(execFileSync('id', [flag, name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    throw usageError(
      `The script user "${name}" does not exist on this machine.`,
      'Set "scriptUser" in the config to an unprivileged OS user (default "nobody").',
    );
  }
}

function passwdEntry(name: string): OsUser | null {
  let passwd: string;
  try {
    passwd = readFileSync('/etc/passwd', 'utf8');
  } catch {
    return null;
  }
  for (const line of passwd.split('\n')) {
    const [user, , uid, gid] = line.split(':');
    if (user === name && /^\d+$/.test(uid ?? '') && /^\d+$/.test(gid ?? '')) return { uid: Number(uid), gid: Number(gid) };
  }
  return null;
}

/**
 * The permission model cannot grant what the OS refuses: the script user must be able to
 * traverse every ancestor and read the directory itself. Checked up front so the operator
 * gets the path and the fix rather than an import error from inside the child.
 */
function assertReadableBy(dir: string, user: OsUser, name: string): void {
  const chain: string[] = [];
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    chain.unshift(d);
    if (path.dirname(d) === d) break;
  }
  for (const [index, d] of chain.entries()) {
    const need = index === chain.length - 1 ? 0o5 : 0o1;
    if (!permits(d, user, need)) {
      throw usageError(
        `The script user "${name}" cannot ${need === 0o1 ? 'enter' : 'read'} ${d}, which a TypeScript script's process needs (${dir}).`,
        `Run \`chmod o+rX ${d}\` (and o+x on its parent directories), or set "scriptUser" in the config to a user that can read it.`,
      );
    }
  }
}

/** Plain mode bits (owner, group, other); ACLs and supplementary groups are not consulted. */
function permits(file: string, user: OsUser, need: number): boolean {
  const st = statSync(file);
  const bits = st.uid === user.uid ? (st.mode >> 6) & 7 : st.gid === user.gid ? (st.mode >> 3) & 7 : st.mode & 7;
  return (bits & need) === need;
}
