/** The public API for scripts: `import { defineScript, sql } from 'safe-run'`. */
export { defineScript } from './script/define.js';
export type { ScriptContext, ScriptDefinition } from './script/define.js';
export type { Operation } from './records/index.js';
export { sql } from 'kysely';
