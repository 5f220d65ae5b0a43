/**
 * Turns a script's source, as the parent sent it, into its definition. The parent read the
 * file once and hashed that text for the intent; evaluating the same text here (never the
 * file again) closes the gap where an edit between load and run would run unrecorded code.
 * The script's own relative imports (`./helpers`) still load from disk through jiti, inside
 * the read allow-list: only the entry module is pinned to the hashed bytes.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { createJiti } from 'jiti';
import { transform } from 'sucrase';
import { CHILD_KYSELY, ownEntry } from '../../own-build.js';
import type { ScriptDefinition } from '../define.js';
import type { ScriptSource } from './protocol.js';

type Jiti = ReturnType<typeof createJiti>;

let jitiInstance: Jiti | undefined;

/**
 * The transpiler, made once per child; the child's start-up snapshot makes it while it is
 * built, with jiti inside the blob (startup-snapshot.ts).
 */
export function transpiler(): Jiti {
  jitiInstance ??= createJiti(import.meta.url, {
    moduleCache: false,
    // The child may not write anywhere: jiti transpiles in memory.
    fsCache: false,
    // sucrase strips types and turns imports into requires in a few ms; jiti's own babel
    // transform costs half a second per child, most of a short script's run.
    transform: (options) => ({
      code: transform(options.source, { transforms: ['typescript', 'imports'], filePath: options.filename }).code,
    }),
    // A script imports 'safe-run' (and kysely) and must get this very installation.
    alias: { 'safe-run': ownEntry('index.js', 'index.js'), ...kyselyAlias() },
  });
  return jitiInstance;
}

/**
 * In the bundle, `kysely` is the child's own bundled file (CHILD_KYSELY), so the script's
 * `sql` and the child's `db` stay one copy. jiti's alias matches by prefix, so kysely's
 * subpath exports (`kysely/helpers/postgres`) are pointed back at the package, the longer
 * alias winning.
 */
function kyselyAlias(): Record<string, string> {
  if (CHILD_KYSELY === 'kysely') return {};
  const helpers = path.dirname(createRequire(import.meta.url).resolve('kysely/helpers/postgres'));
  return { kysely: CHILD_KYSELY, 'kysely/helpers': helpers };
}

async function evaluate({ file, source }: ScriptSource): Promise<Partial<ScriptDefinition>> {
  // forceTranspile: left to itself jiti would import a .mjs natively, that is from the file on disk.
  const exports = transpiler().evalModule(source, { filename: file, async: false, forceTranspile: true }) as { default?: unknown } | null;
  return (exports?.default ?? exports) as Partial<ScriptDefinition>;
}

/**
 * One evaluation per script and source: the child that described a script runs it with the
 * module it already has, so a guarded run pays the import once. A different source (which the
 * parent never sends for one loaded script) is evaluated anew rather than trusted to match.
 */
const evaluated = new Map<string, { readonly source: string; readonly definition: Promise<Partial<ScriptDefinition>> }>();

export function definitionOf(script: ScriptSource): Promise<Partial<ScriptDefinition>> {
  const hit = evaluated.get(script.file);
  if (hit?.source === script.source) return hit.definition;
  const definition = evaluate(script);
  // A rejection is kept too: a module that threw at import throws the same way when run.
  definition.catch(() => {});
  evaluated.set(script.file, { source: script.source, definition });
  return definition;
}
