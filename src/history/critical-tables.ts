import { DEFAULT_MAX_DROP_PERCENT, DEFAULT_MAX_UPDATE_PERCENT, type Config, type CriticalTableRule } from '../config/config.js';
import type { Logger } from '../logger.js';
import type { TableKey } from '../records/index.js';
import { describeScriptFiles } from '../script/describe.js';
import { findScriptFiles, scriptLoadOptions } from '../script/load.js';

export interface CriticalTables {
  readonly rules: Readonly<Record<TableKey, CriticalTableRule>>;
  /** Which scripts declared each table critical (config entries are not listed here). */
  readonly declaredBy: Readonly<Record<TableKey, readonly string[]>>;
}

/**
 * Every table someone said must not go empty: the config's criticalTables, and each script's
 * `critical` declarations (a script's header is often the only place it is written down). A
 * config rule wins; a table only scripts name gets the default limits. A script that does
 * not load costs a warning, not the check: the alert must not depend on every script compiling.
 */
export async function criticalTablesOf(config: Config, log: Logger): Promise<CriticalTables> {
  const rules: Record<TableKey, CriticalTableRule> = {};
  const declaredBy: Record<TableKey, string[]> = {};
  const files = [...findScriptFiles(config.scriptsDirs).values()];
  const loaded = files.length ? await describeScriptFiles(files, { ...scriptLoadOptions(config), log }) : [];
  loaded.forEach((script, index) => {
    if (script instanceof Error) {
      log.warn(`Could not read the critical tables declared by ${files[index]}`, { error: script.message });
      return;
    }
    for (const table of script.critical) {
      rules[table] = { maxDropPercent: DEFAULT_MAX_DROP_PERCENT, maxUpdatePercent: DEFAULT_MAX_UPDATE_PERCENT };
      (declaredBy[table] ??= []).push(script.name);
    }
  });
  return { rules: { ...rules, ...config.criticalTables }, declaredBy };
}
