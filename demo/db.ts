import { createDb } from '../src/db/connection.js';
import { parseDatabaseUrl, redactUrl } from '../src/db/url.js';
import { migrateDownAll, migrateToLatest } from './migrate.js';
import { seedDemo } from './seed.js';
import { errorMessage } from '../src/errors.js';

/** `npm run db:migrate | db:seed | db:reset`, on DATABASE_URL. */
async function main(command: string | undefined): Promise<void> {
  const url = parseDatabaseUrl(process.env.DATABASE_URL);
  const db = createDb(url);
  try {
    if (command === 'migrate' || command === 'reset') {
      if (command === 'reset') await migrateDownAll(db);
      const result = await migrateToLatest(db);
      for (const r of result.results ?? []) process.stdout.write(`migration ${r.migrationName}: ${r.status}\n`);
    }
    if (command === 'seed' || command === 'reset') {
      await seedDemo(db);
      process.stdout.write(`seeded demo data into ${redactUrl(url)}\n`);
    }
    if (!['migrate', 'seed', 'reset'].includes(command ?? '')) throw new Error('usage: db.js migrate|seed|reset');
  } finally {
    await db.destroy();
  }
}

main(process.argv[2]).catch((error: unknown) => {
  process.stderr.write(`${errorMessage(error)}\n`);
  process.exitCode = (error as { exitCode?: number }).exitCode ?? 1;
});
