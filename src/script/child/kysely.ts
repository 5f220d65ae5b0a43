import { createRequire } from 'node:module';
import { CHILD_KYSELY } from '../../own-build.js';

/**
 * Kysely as the child loads it: its CommonJS build, through require. A script's own imports
 * of `kysely` and `safe-run` go through jiti, which turns them into requires of that same
 * build; importing the ES module here as well would load Kysely twice, and that second copy
 * was the largest part of a child's start-up (about 200 of 550 ms before the script ran).
 * One copy also means the script's `sql` and the child's `db` come from one module.
 *
 * Required on first use, not at load: the child's start-up snapshot (startup-snapshot.ts)
 * cannot hold a module loaded by require(). A child started from it finds its own bundled
 * copy in require's cache under that file's name, and reads no file at all.
 */
let loaded: typeof import('kysely') | undefined;

export function kysely(): typeof import('kysely') {
  loaded ??= createRequire(import.meta.url)(CHILD_KYSELY) as typeof import('kysely');
  return loaded;
}
