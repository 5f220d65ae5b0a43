// Bundles src/ into dist/bundle and points the package's bin at it: run by `npm run build`
// after tsc, or alone after an edit under src/. Build-time support code, never imported by src/.
import { build, type BuildOptions, type Metafile, type Plugin } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { blobIdentity } from '../../src/startup-blob.js';

/**
 * Why a bundle: a guarded run spent 250-300 ms of a ~900 ms process finding, reading and
 * compiling ~600 module files (kysely alone is 263). The bundle is a few dozen files; commands
 * stay lazy because `splitting` keeps every `import()` of src/commands/registry.ts a chunk of
 * its own. tsc's tree (dist/src) stays as it is for the tests that import modules directly.
 *
 * The bundle is flat (entries and chunks in one directory): src/own-build.ts finds the
 * entries there by the names below. Packages loaded through createRequire (pino,
 * cli-progress, libpg-query's emscripten module beside its WASM file, the child's kysely)
 * are not followed by esbuild and load from node_modules as before.
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const SRC = path.join(ROOT, 'src');
const OUT = path.join(ROOT, 'dist/bundle');
const BIN = path.join(ROOT, 'dist/src/cli.js');

const common: BuildOptions = {
  absWorkingDir: ROOT,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  outdir: OUT,
  entryNames: '[name]',
  chunkNames: '[name]-[hash]',
  metafile: true,
  logLevel: 'warning',
  // Linked maps cost nothing at run time; NODE_OPTIONS=--enable-source-maps reads them.
  sourcemap: 'linked',
  sourcesContent: false,
  define: { SAFE_RUN_BUNDLE: 'true' },
  // CommonJS packages inside an ES module still call require() for Node's built-ins.
  banner: { js: "import { createRequire as __bundleRequire } from 'node:module'; const require = __bundleRequire(import.meta.url);" },
  // pg's optional native binding is not installed; pg requires it only when asked for. jiti
  // loads its CommonJS half and its babel from paths relative to its own files.
  external: ['pg-native', 'jiti'],
};

/**
 * Work third-party modules do when they load, for something a command rarely or never needs,
 * made lazy in the bundle. Each costs every command that loads the module, on every run:
 * - pg asks "is this a Cloudflare Worker?" and, on Node 20 (no `navigator`), finds out by
 *   building a fetch `Response`, which loads undici: 25-35 ms for an answer always no here.
 *   pg still checks `navigator` first.
 * - string-width (three copies under yargs) builds an `Intl.Segmenter` and compiles the RGI emoji
 *   property regex at load: 40-100 ms together, used only to measure text that is not ASCII.
 *   They are built on first use instead, and the two older copies get string-width 8's
 *   printable-ASCII fast path, so yargs' help text (which it lays out after every command
 *   starts, in case the command prints it) never needs them.
 * - yargs lays out the whole help text of a command right after starting it (15-20 ms), in case
 *   the command prints its help later. None does: a command's failure reaches safe-run's own
 *   error handler (program.ts `.fail`), which prints the error, not the help.
 * The build fails, rather than silently keeping the cost, if an upgrade changes a line.
 */
const LAZY_SEGMENTER = {
  from: 'const segmenter = new Intl.Segmenter();',
  to: 'let segmenterMade; const segmenter = { segment: (text) => (segmenterMade ??= new Intl.Segmenter()).segment(text) };',
};
/** string-width 8's own fast path, for the two copies of string-width 7 that lack it. */
const ASCII_FAST_PATH = {
  from: '\tlet width = 0;\n\tconst eastAsianWidthOptions',
  to: 'if (/^[\\u0020-\\u007E]*$/.test(string)) return string.length;\n\tlet width = 0;\n\tconst eastAsianWidthOptions',
};
const LAZY_AT_LOAD: readonly { readonly file: string; readonly from: string; readonly to: string }[] = [
  { file: 'node_modules/pg/lib/stream.js', from: "if (typeof Response === 'function') {", to: 'if (false) {' },
  { file: 'node_modules/cliui/node_modules/string-width/index.js', ...LAZY_SEGMENTER },
  { file: 'node_modules/cliui/node_modules/string-width/index.js', ...ASCII_FAST_PATH },
  { file: 'node_modules/wrap-ansi/node_modules/string-width/index.js', ...LAZY_SEGMENTER },
  { file: 'node_modules/wrap-ansi/node_modules/string-width/index.js', ...ASCII_FAST_PATH },
  { file: 'node_modules/string-width/index.js', ...LAZY_SEGMENTER },
  {
    file: 'node_modules/yargs/build/lib/command.js',
    from: 'yargs.getInternalMethods().getUsageInstance().cacheHelpMessage();',
    to: '/* help is laid out when it is printed (support/build/bundle.ts) */',
  },
  {
    file: 'node_modules/string-width/index.js',
    from: 'const rgiEmojiRegex = /^\\p{RGI_Emoji}$/v;',
    to: 'let rgiEmojiMade; const rgiEmojiRegex = { test: (text) => (rgiEmojiMade ??= /^\\p{RGI_Emoji}$/v).test(text) };',
  },
];
/**
 * zod's `z` namespace carries `z.locales` (and `z.core.locales`): every language's error
 * messages, 366 kB of the 750 kB zod chunk, parsed by every command that validates a config
 * or a log entry. safe-run speaks English, which zod configures from its own `locales/en.js`;
 * those namespaces are empty here.
 */
const zodWithoutLocales: Plugin = {
  name: 'zod-without-locales',
  setup(plugin) {
    plugin.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      args.importer.includes(path.join('node_modules', 'zod', 'v4', path.sep)) ? { path: 'zod-locales', namespace: 'empty' } : undefined,
    );
    plugin.onLoad({ filter: /.*/, namespace: 'empty' }, () => ({ contents: 'export {};', loader: 'js' }));
  },
};

/** jiti's babel (1.5 MB), which jiti requires only when it is given no transform of its own. */
const jitiWithoutBabel: Plugin = {
  name: 'jiti-without-babel',
  setup(plugin) {
    plugin.onResolve({ filter: /[\\/]babel\.cjs$/ }, (args) =>
      args.importer.includes(`${path.sep}jiti${path.sep}`) ? { path: args.path, external: true } : undefined,
    );
  },
};

const lazyAtLoad: Plugin = {
  name: 'lazy-at-load',
  setup(plugin) {
    plugin.onLoad({ filter: /[\\/]node_modules[\\/].*[\\/](stream|index|command)\.js$/ }, (args) => {
      const file = path.relative(ROOT, args.path).split(path.sep).join('/');
      const patches = LAZY_AT_LOAD.filter((p) => p.file === file);
      if (patches.length === 0) return undefined;
      let source = readFileSync(args.path, 'utf8');
      for (const patch of patches) {
        if (!source.includes(patch.from)) {
          throw new Error(`${args.path} no longer holds \`${patch.from}\`; look at LAZY_AT_LOAD in support/build/bundle.ts`);
        }
        source = source.replace(patch.from, patch.to);
      }
      return { contents: source, loader: 'js' };
    });
  },
};

/** The CLI and the report's verification worker: everything they import is inside. */
async function bundleCli(): Promise<Metafile> {
  const result = await build({
    ...common,
    plugins: [lazyAtLoad, zodWithoutLocales],
    entryPoints: { cli: path.join(SRC, 'cli.ts'), 'verify-worker': path.join(SRC, 'report/verify-worker.ts') },
  });
  return result.metafile!;
}

/**
 * The CLI and the script's child again, each as one CommonJS file for its start-up snapshot
 * (src/startup-snapshot.ts, src/script/child/startup-snapshot.ts): a snapshot is built from a
 * script, not from ES modules. `import.meta` becomes this file's own location, the bundle
 * directory like the chunks above, so the paths derived from it (src/own-build.ts) are the same.
 */
async function bundleForSnapshots(): Promise<Metafile[]> {
  const forSnapshot: BuildOptions = {
    ...common,
    splitting: false,
    format: 'cjs',
    outdir: undefined,
    sourcemap: false,
    plugins: [lazyAtLoad, zodWithoutLocales],
    define: { ...common.define, 'import.meta.url': '__bundleUrl', 'import.meta.resolve': '__bundleResolve' },
    banner: {
      // The snapshot builder's own require() knows Node's built-ins only: a package is resolved through createRequire.
      js: "var __bundleUrl = require('node:url').pathToFileURL(__filename).href; var __bundleResolve = (s) => require('node:url').pathToFileURL(require('node:module').createRequire(__filename).resolve(s)).href;",
    },
  };
  const [cli, child] = await Promise.all([
    build({ ...forSnapshot, entryPoints: [path.join(SRC, 'startup-snapshot.ts')], outfile: path.join(OUT, 'cli-snapshot.cjs') }),
    build({
      ...forSnapshot,
      entryPoints: [path.join(SRC, 'script/child/startup-snapshot.ts')],
      outfile: path.join(OUT, 'child-snapshot.cjs'),
      // jiti and kysely are inside, since a snapshot cannot hold a module loaded by require();
      // the child puts this kysely where the script's require() finds it (startup-snapshot.ts).
      // jiti's babel is not, as the child always gives jiti sucrase's transform.
      external: ['pg-native'],
      plugins: [lazyAtLoad, zodWithoutLocales, jitiWithoutBabel],
      mainFields: ['module', 'main'],
    }),
  ]);
  return [cli.metafile!, child.metafile!];
}

/**
 * The script's child and the `safe-run` module a script imports. kysely stays the one copy in
 * node_modules that the script's own `import ... from 'kysely'` gets through jiti
 * (src/script/child/kysely.ts).
 */
async function bundleChild(): Promise<Metafile> {
  const result = await build({
    ...common,
    entryPoints: { child: path.join(SRC, 'script/child/main.ts'), index: path.join(SRC, 'index.ts') },
    external: [...common.external!, 'kysely'],
    // jiti evaluates index.js (and the chunk it imports) as CommonJS, whose own `require` the
    // banner would declare again; nothing in this build calls require().
    banner: {},
    // sucrase's ES build: a lazily imported CommonJS chunk would offer only a default export,
    // and evaluate.ts takes { transform } from it.
    mainFields: ['module', 'main'],
  });
  return result.metafile!;
}

/**
 * Packages a process loads with require(), each as one CommonJS file (dist/bundle/<name>.cjs).
 * Under the permission model every file read is checked, and kysely's 263 files cost a child
 * about 110 ms to require; the one file about 25. A script's `kysely` resolves to that file
 * through jiti's alias (src/script/child/evaluate.ts), so the child and the script still share
 * one copy. pino is required by the first log line (src/logger.ts): its 15 files took 35 ms
 * of every guarded run, the one file 12-20 ms. No transport is used, so the worker files
 * pino's transports start by path are not needed.
 */
const COMMONJS_FILES = ['kysely', 'pino'] as const;

async function bundleCommonJs(name: (typeof COMMONJS_FILES)[number]): Promise<Metafile> {
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: { [name]: createRequire(path.join(ROOT, 'package.json')).resolve(name) },
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    outdir: OUT,
    // The package is an ES module package: a .js file here would be read as one.
    outExtension: { '.js': '.cjs' },
    metafile: true,
    logLevel: 'warning',
  });
  return result.metafile!;
}

/** package.json's bin (dist/src/cli.js, tsc's output until now) becomes a door into the bundle. */
function pointBinAtBundle(): void {
  writeFileSync(
    BIN,
    "#!/usr/bin/env node\n// Written by support/build/bundle.ts: the CLI runs from the bundle.\nimport '../bundle/cli.js';\n",
  );
  chmodSync(BIN, 0o755);
}

/**
 * The start-up snapshots: Node runs cli-snapshot.cjs once and writes its heap to cli.blob, which
 * bin/safe-run starts from (child.blob likewise for a script's child). V8 accepts a blob only
 * from the same Node binary and the same heap flags, so the flags are read from bin/safe-run
 * itself, and `<blob>.id` names the bundle directory and the Node binary (src/startup-blob.ts),
 * compared before a blob is used. Without a blob (a build that failed here, another Node) the
 * CLI and the child load the bundle's modules as before: slower, the same behaviour.
 */
function buildStartupSnapshots(): void {
  const flags = /^flags="([^"]*)"$/m.exec(readFileSync(path.join(ROOT, 'bin/safe-run'), 'utf8'))?.[1];
  if (flags === undefined) throw new Error('bin/safe-run no longer sets flags="..." (the heap flags the blob is built with)');
  buildStartupSnapshot('cli', flags.split(' '));
  // The script's child is forked with no heap flags (src/script/child-sandbox.ts).
  buildStartupSnapshot('child', []);
}

function buildStartupSnapshot(name: 'cli' | 'child', flags: readonly string[]): void {
  const blob = path.join(OUT, `${name}.blob`);
  const built = spawnSync(process.execPath, [...flags, '--snapshot-blob', blob, '--build-snapshot', `${name}-snapshot.cjs`], {
    cwd: OUT,
    encoding: 'utf8',
  });
  // Node warns that some built-ins are "not yet fully verified" in a snapshot; the tests run the CLI from it.
  const problems = built.stderr
    .split('\n')
    .filter((line) => line.trim() && !/not yet fully verified|may still work|To request support|--trace-warnings/.test(line));
  if (built.status !== 0 || !existsSync(blob)) {
    rmSync(blob, { force: true });
    process.stderr.write(`warning: no start-up snapshot for the ${name} (it will start slower): ${problems.slice(-5).join(' ')}\n`);
    return;
  }
  writeFileSync(`${blob}.id`, blobIdentity(OUT, process.execPath));
}

rmSync(OUT, { recursive: true, force: true });
const built = (await Promise.all([bundleCli(), bundleForSnapshots(), bundleChild(), ...COMMONJS_FILES.map(bundleCommonJs)])).flat();
// Which source files each bundle file holds: tests map a traced chunk back to its modules.
const meta: Metafile = {
  inputs: Object.assign({}, ...built.map((m) => m.inputs)) as Metafile['inputs'],
  outputs: Object.assign({}, ...built.map((m) => m.outputs)) as Metafile['outputs'],
};
writeFileSync(path.join(OUT, 'meta.json'), JSON.stringify(meta));
pointBinAtBundle();
buildStartupSnapshots();
