import { sql } from 'kysely';
import { createDb } from '../../src/db/connection.js';
import { withDatabase } from '../../src/db/url.js';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../../support/throwaway/postgres.js';
import { migrateToLatest } from '../../demo/migrate.js';
import { seedDemo } from '../../demo/seed.js';
import { TEMPLATE_DB } from '../helpers/constants.js';

/**
 * One cluster for the whole jest run, and one template database with the seeded demo
 * schema. Each test file clones the template (tests/helpers/db.ts), which takes
 * milliseconds and keeps files independent.
 */
export default async function globalSetup(): Promise<void> {
  const server = await startThrowawayPostgres({ existingUrl: process.env.TEST_DATABASE_URL });
  (globalThis as { __SAFE_RUN_PG__?: ThrowawayPostgres }).__SAFE_RUN_PG__ = server;
  process.env.SAFE_RUN_TEST_SERVER_URL = server.url;

  const admin = createDb(server.url, { maxConnections: 1 });
  try {
    await sql`drop database if exists ${sql.id(TEMPLATE_DB)}`.execute(admin);
    await sql`create database ${sql.id(TEMPLATE_DB)}`.execute(admin);
  } finally {
    await admin.destroy();
  }
  const template = createDb(withDatabase(server.url, TEMPLATE_DB), { maxConnections: 1 });
  try {
    await migrateToLatest(template);
    await seedDemo(template);
  } finally {
    await template.destroy();
  }
}
