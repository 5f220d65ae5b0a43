import type { ScriptDefinition } from '../src/script/define.js';
import { fileURLToPath } from 'node:url';

/**
 * A TypeScript script imported into this process, as an operator's own runner would do it:
 * the baseline the guarded run (whose scripts run in a confined child) is compared with.
 * Bench only: safe-run itself never runs a script in its own process.
 */
export async function importScriptInProcess(file: string): Promise<ScriptDefinition> {
  const { createJiti } = await import('jiti');
  const jiti = createJiti(import.meta.url, {
    moduleCache: false,
    alias: { 'safe-run': fileURLToPath(new URL('../src/index.js', import.meta.url)) },
  });
  return (await jiti.import(file, { default: true })) as ScriptDefinition;
}
