import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Kysely } from 'kysely';
import { tableKey } from '../src/db/names.js';
import type { ScriptDefinition } from '../src/script/define.js';
import type { LoadedScript } from '../src/script/load.js';
import { IpcDialect } from '../src/script/child/ipc-dialect.js';

/**
 * A TypeScript script imported into this process, as an operator's own runner would do it:
 * the baseline the guarded run (whose scripts run in a confined child) is compared with.
 * Bench only: safe-run itself never runs a script in its own process.
 *
 * It is transpiled as the child does it (sucrase, no disk cache), so a comparison measures
 * the process boundary, not two different TypeScript transforms.
 */
export async function importScriptInProcess(file: string): Promise<ScriptDefinition> {
  const [{ createJiti }, { transform }] = await Promise.all([import('jiti'), import('sucrase')]);
  const jiti = createJiti(import.meta.url, {
    moduleCache: false,
    fsCache: false,
    transform: (options) => ({
      code: transform(options.source, { transforms: ['typescript', 'imports'], filePath: options.filename }).code,
    }),
    alias: { 'safe-run': fileURLToPath(new URL('../src/index.js', import.meta.url)) },
  });
  return (await jiti.import(file, { default: true })) as ScriptDefinition;
}

/**
 * The same script as a LoadedScript that runs in this process, for runGuarded's `load`: its
 * `db` is a Kysely whose only connection is the runner's gate (the child's dialect, with the
 * IPC hop taken out), so every statement is still judged and measured exactly as a child's.
 */
export async function inProcessLoadedScript(file: string): Promise<LoadedScript> {
  const source = readFileSync(file, 'utf8');
  const definition = await importScriptInProcess(file);
  const keyed = <V>(record: Readonly<Record<string, V>> = {}): Record<string, V> =>
    Object.fromEntries(Object.entries(record).map(([name, value]) => [tableKey(name), value]));
  return {
    name: definition.name,
    description: definition.description,
    kind: 'ts',
    path: file,
    source,
    sha256: createHash('sha256').update(source).digest('hex'),
    touches: keyed(definition.touches),
    limits: keyed(definition.limits),
    critical: (definition.critical ?? []).map(tableKey),
    ddl: definition.ddl ?? false,
    run: (context) =>
      definition.run({
        // eslint-disable-next-line @typescript-eslint/no-explicit-any
        db: new Kysely<any>({ dialect: new IpcDialect(context.gate) }) as never,
        args: [...context.args],
        log: context.log,
        dryRun: context.dryRun,
      }),
    dispose: async () => {},
  };
}
