import { countersWentBackwards, sameDatabase } from '../snapshot/counters.js';
import type { TableObservation } from '../history/observations.js';

/**
 * What happened to the database or the table between two observations, beyond the counts.
 * These are the marks the incident lacked: "the database was recreated in that window"
 * turns "likely a database reset" into a fact.
 */
export type WindowEvent = 'db-recreated' | 'stats-reset' | 'table-created' | 'table-dropped' | 'table-recreated';

export function windowEvents(a: TableObservation, b: TableObservation): WindowEvent[] {
  const events: WindowEvent[] = [];
  const recreated = !sameDatabase(a.database, b.database);
  if (recreated) events.push('db-recreated');
  else if (a.database.statsReset !== b.database.statsReset) events.push('stats-reset');
  else if (
    a.table?.counters &&
    b.table?.counters &&
    a.table.oid === b.table.oid &&
    countersWentBackwards(a.table.counters, b.table.counters)
  )
    events.push('stats-reset');
  if (a.table && !b.table) events.push('table-dropped');
  else if (!a.table && b.table) events.push('table-created');
  else if (!recreated && a.table && b.table && a.table.oid !== b.table.oid) events.push('table-recreated');
  return events;
}

export function describeEvent(event: WindowEvent): string {
  switch (event) {
    case 'db-recreated':
      return 'the database was recreated (new oid or system identifier)';
    case 'stats-reset':
      return 'the statistics were reset (counters not comparable)';
    case 'table-created':
      return 'the table was created';
    case 'table-dropped':
      return 'the table was dropped';
    case 'table-recreated':
      return 'the table was dropped and recreated (new oid)';
  }
}
