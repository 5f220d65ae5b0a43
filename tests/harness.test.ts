import { DEMO_USERS } from '../demo/seed.js';
import { countRows, createTestDatabase, type TestDatabase } from './helpers/db.js';

describe('test harness', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(async () => {
    await t.drop();
  });

  it('gives each file a seeded clone of the demo database', async () => {
    expect(await countRows(t.db, 'users')).toBe(DEMO_USERS.length);
    expect(await countRows(t.db, 'oidc_models')).toBeGreaterThan(40);
  });
});
