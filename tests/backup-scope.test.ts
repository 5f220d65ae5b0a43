import { sql } from 'kysely';
import { backupScope } from '../src/backup/scope.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';

describe('backupScope', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase('scope');
  });
  afterAll(async () => {
    await t.drop();
  });

  it('follows CASCADE and SET NULL from users to its children', async () => {
    expect(await backupScope(t.db, ['public.users'], 'touched')).toEqual([
      'public.credit_allocation',
      'public.subscriptions',
      'public.usage_events',
      'public.users',
    ]);
  });

  it('keeps oidc_models alone: nothing references it', async () => {
    expect(await backupScope(t.db, ['public.oidc_models'], 'touched')).toEqual(['public.oidc_models']);
  });

  it('does not follow a RESTRICT / NO ACTION key (usage_events -> models)', async () => {
    expect(await backupScope(t.db, ['models'], 'touched')).toEqual(['public.models']);
  });

  it('guarded adds the critical tables and their cascade closure to the declared ones', async () => {
    expect(await backupScope(t.db, ['public.oidc_models'], 'guarded', ['users'])).toEqual([
      'public.credit_allocation',
      'public.oidc_models',
      'public.subscriptions',
      'public.usage_events',
      'public.users',
    ]);
    // touched ignores them: only what the script declares.
    expect(await backupScope(t.db, ['public.oidc_models'], 'touched', ['users'])).toEqual(['public.oidc_models']);
  });

  it('walks transitively, takes partitions along, and drops names that match no table', async () => {
    await sql`
      create table invoices (id int primary key, subscription_id uuid references subscriptions (id) on delete cascade);
      create table invoice_lines (id int, invoice_id int references invoices (id) on delete set default);
      create table audit_notes (id int, invoice_id int references invoices (id));
      create schema "Part S";
      create table "Part S"."Log" (id int, at date) partition by range (at);
      create table "Part S"."Log 2024" partition of "Part S"."Log" for values from ('2024-01-01') to ('2025-01-01');
      create table "Part S"."Log rest" partition of "Part S"."Log" default`.execute(t.db);
    const scope = await backupScope(t.db, ['users', 'Part S.Log', 'public.not_created_yet'], 'touched');
    expect(scope).toEqual([
      'Part S.Log',
      'Part S.Log 2024',
      'Part S.Log rest',
      'public.credit_allocation',
      'public.invoice_lines',
      'public.invoices',
      'public.subscriptions',
      'public.usage_events',
      'public.users',
    ]);
  });

  it('full means every user table and none means nothing', async () => {
    const full = await backupScope(t.db, [], 'full');
    expect(full).toEqual(expect.arrayContaining(['public.users', 'public.oidc_models', 'Part S.Log 2024']));
    expect(await backupScope(t.db, ['public.users'], 'none')).toEqual([]);
  });
});
