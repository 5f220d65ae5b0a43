import { Migrator, NO_MIGRATIONS, type Migration, type MigrationResultSet } from 'kysely';
import type { Db } from '../src/db/connection.js';
import * as demoSchema from './migrations/001-demo-schema.js';

/** Static list: the migrations are compiled into dist/, so a folder scan would be fragile. */
const migrations: Record<string, Migration> = {
  '001-demo-schema': demoSchema,
};

function migrator(db: Db): Migrator {
  return new Migrator({ db, provider: { getMigrations: async () => migrations } });
}

export async function migrateToLatest(db: Db): Promise<MigrationResultSet> {
  return throwOnError(await migrator(db).migrateToLatest());
}

export async function migrateDownAll(db: Db): Promise<MigrationResultSet> {
  return throwOnError(await migrator(db).migrateTo(NO_MIGRATIONS));
}

function throwOnError(result: MigrationResultSet): MigrationResultSet {
  if (result.error) throw result.error;
  return result;
}
