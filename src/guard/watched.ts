import type { Config } from '../config/config.js';
import type { ScriptRecord, TableKey } from '../records/index.js';

/** Critical tables: the config's and those the script names itself. */
export function criticalTableKeys(script: Pick<ScriptRecord, 'critical'>, config: Pick<Config, 'criticalTables'>): Set<TableKey> {
  return new Set([...script.critical, ...Object.keys(config.criticalTables)]);
}

/** Declared and critical tables: the ones the guards count exactly and watch for other sessions. */
export function watchedTableKeys(
  script: Pick<ScriptRecord, 'touches' | 'critical'>,
  config: Pick<Config, 'criticalTables'>,
): Set<TableKey> {
  return new Set([...Object.keys(script.touches), ...criticalTableKeys(script, config)]);
}
