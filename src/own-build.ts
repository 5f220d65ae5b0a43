import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Where this build of safe-run reads its own files from. tsc's tree (dist/src) keeps the
 * source layout; the bundle (dist/bundle, made by support/build/bundle.ts) is flat: every
 * entry and chunk in one directory. This module sits at the top of both, so the directory it
 * is read from is the build's root either way.
 */
export const OWN_BUILD_DIR = fileURLToPath(new URL('./', import.meta.url));

// Set by the bundler's `define`; tsc's tree never declares it, and typeof spares the ReferenceError.
declare const SAFE_RUN_BUNDLE: boolean | undefined;
const bundled = typeof SAFE_RUN_BUNDLE !== 'undefined' && SAFE_RUN_BUNDLE;

/**
 * A file another process or thread starts from (the script's child, the report's verification
 * worker) or a script imports (`safe-run`): its path in tsc's tree, or its name in the bundle.
 */
export function ownEntry(treePath: string, bundleName: string): string {
  return path.join(OWN_BUILD_DIR, bundled ? bundleName : treePath);
}

/**
 * What to require() for a package the bundle holds as one CommonJS file (support/build/bundle.ts
 * says why): that file in the bundle, the package itself in tsc's tree.
 */
export function ownCommonJs(name: 'kysely' | 'pino'): string {
  return bundled ? path.join(OWN_BUILD_DIR, `${name}.cjs`) : name;
}

/**
 * dist/bundle, where the bundle and the start-up snapshots are, from either tree. A snapshot
 * records the paths of the tree it was built in, so it is used only in the build that made it.
 */
export const BUNDLE_DIR = path.resolve(OWN_BUILD_DIR, bundled ? '.' : '../bundle');

/** The kysely a script's child and the script share. */
export const CHILD_KYSELY = ownCommonJs('kysely');
