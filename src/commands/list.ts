import type { CommandBody } from './registry.js';
import type { Config } from '../config/config.js';
import { describeScriptFiles } from '../script/describe.js';
import { findScriptFiles, scriptLoadOptions, type LoadedScript } from '../script/load.js';
import { emit, loadContext, type GlobalArgs } from './context.js';

export interface ListedScript {
  readonly name: string;
  readonly kind: 'ts' | 'sql' | 'builtin';
  readonly path: string;
  readonly description: string;
  readonly touches: LoadedScript['touches'];
  readonly limits: LoadedScript['limits'];
  readonly critical: LoadedScript['critical'];
  readonly error?: string;
}

/**
 * Every script in the scripts directories with its declared blast radius. One broken script
 * does not hide the others. Unchanged scripts come from the declarations cache (describe.ts).
 */
export async function listScripts(config: Config): Promise<ListedScript[]> {
  const found = [...findScriptFiles(config.scriptsDirs)];
  const loaded = await describeScriptFiles(
    found.map(([, file]) => file),
    scriptLoadOptions(config),
  );
  return found.map(([name, file], index): ListedScript => {
    const s = loaded[index]!;
    if (s instanceof Error) {
      return {
        name,
        kind: file.endsWith('.sql') ? 'sql' : 'ts',
        path: file,
        description: '',
        touches: {},
        limits: {},
        critical: [],
        error: s.message,
      };
    }
    return {
      name: s.name,
      kind: s.kind,
      path: s.path,
      description: s.description,
      touches: s.touches,
      limits: s.limits,
      critical: s.critical,
    };
  });
}

function renderList(scripts: ListedScript[]): string {
  if (!scripts.length) return 'No scripts found. Put .ts or .sql scripts in ./scripts or set "scriptsDir".';
  return scripts
    .map((s) => {
      const lines = [`${s.name}  (${s.kind})  ${s.description}`];
      if (s.error) lines.push(`    ! ${s.error}`);
      for (const [table, ops] of Object.entries(s.touches)) {
        const limits = Object.entries(s.limits[table] ?? {}).map(([op, n]) => `${op} <= ${n}`);
        lines.push(`    touches ${table}: ${ops.join(', ')}${limits.length ? `  (limit ${limits.join(', ')})` : ''}`);
      }
      if (s.critical.length) lines.push(`    critical ${s.critical.join(', ')}`);
      return lines.join('\n');
    })
    .join('\n\n');
}

export const listCommand: CommandBody<GlobalArgs> = {
  handler: async (argv) => {
    const ctx = await loadContext(argv);
    emit(ctx, await listScripts(ctx.config), renderList);
  },
};
