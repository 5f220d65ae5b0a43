import { sql, type Kysely } from 'kysely';

/** The demo's tables are not safe-run's (db/schema.ts); the seed writes them without a typed interface. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type DemoDb = Kysely<any>;

/**
 * Demo data modelled on the incident: its eight test users, a few OAuth clients and models,
 * and oidc_models rows of every kind the cleanup script has to tell apart. Fixed ids and
 * upserts make it idempotent; one transaction makes it all-or-nothing.
 */
export const DEMO_USERS = [
  { id: '00000000-0000-4000-8000-000000000001', email: 'free.user@example.com', name: 'Free User', is_active: true },
  { id: '00000000-0000-4000-8000-000000000002', email: 'pro.user@example.com', name: 'Pro User', is_active: true },
  { id: '00000000-0000-4000-8000-000000000003', email: 'admin.test@rephlo.ai', name: 'Admin Test', is_active: true },
  { id: '00000000-0000-4000-8000-000000000004', email: 'google.user@example.com', name: 'Google User', is_active: true },
  { id: '00000000-0000-4000-8000-000000000005', email: 'ops.user@rephlo.ai', name: 'Ops User', is_active: true },
  { id: '00000000-0000-4000-8000-000000000006', email: 'support.user@rephlo.ai', name: 'Support User', is_active: true },
  { id: '00000000-0000-4000-8000-000000000007', email: 'analyst.user@rephlo.ai', name: 'Analyst User', is_active: true },
  { id: '00000000-0000-4000-8000-000000000008', email: 'auditor.user@rephlo.ai', name: 'Auditor User', is_active: false },
] as const;

const MISSING_USER_A = '0000dead-0000-4000-8000-00000000000a';
const MISSING_USER_B = '0000dead-0000-4000-8000-00000000000b';

/** What cleanup-invalid-sessions must find in freshly seeded data. */
export const EXPECTED_CLEANUP = { valid: 4, unauthenticated: 2, invalid: 3, expired: 2, deleted: 5 } as const;

interface OidcRow {
  id: string;
  kind: string;
  payload: Record<string, unknown>;
  expiresInHours: number | null;
  grant_id?: string;
  uid?: string;
}

function oidcRows(): OidcRow[] {
  const u = (n: number): string => DEMO_USERS[n - 1]!.id;
  const rows: OidcRow[] = [
    // Valid sessions: active users, one using the older `account` key.
    { id: 'sess-valid-free', kind: 'Session', payload: { accountId: u(1) }, expiresInHours: 24, uid: 'uid-1' },
    { id: 'sess-valid-pro', kind: 'Session', payload: { accountId: u(2) }, expiresInHours: 24, uid: 'uid-2' },
    { id: 'sess-valid-admin', kind: 'Session', payload: { accountId: u(3) }, expiresInHours: 48, uid: 'uid-3' },
    { id: 'sess-valid-legacy', kind: 'Session', payload: { account: u(4) }, expiresInHours: 12, uid: 'uid-4' },
    // Invalid: accounts that do not exist (the incident's two), and an inactive user.
    { id: 'M4eqyWOjTeK_missing', kind: 'Session', payload: { accountId: MISSING_USER_A }, expiresInHours: 24 },
    { id: 'NgwG1Cvj9D3t_missing', kind: 'Session', payload: { accountId: MISSING_USER_B }, expiresInHours: 24 },
    { id: 'sess-inactive-auditor', kind: 'Session', payload: { accountId: u(8) }, expiresInHours: 24 },
    // Expired sessions, whatever their account.
    { id: 'sess-expired-ops', kind: 'Session', payload: { accountId: u(5) }, expiresInHours: -2 },
    { id: 'sess-expired-missing', kind: 'Session', payload: { accountId: MISSING_USER_A }, expiresInHours: -48 },
    // Unauthenticated sessions: no account yet, kept.
    { id: 'sess-anon-1', kind: 'Session', payload: { cookie: 'anon' }, expiresInHours: 1 },
    { id: 'sess-anon-2', kind: 'Session', payload: {}, expiresInHours: 1 },
  ];
  // Other OIDC artefacts, which the cleanup must never touch.
  for (let i = 1; i <= 20; i++)
    rows.push({
      id: `at-${i}`,
      kind: 'AccessToken',
      payload: { accountId: u((i % 7) + 1), clientId: 'web-app' },
      expiresInHours: 1,
      grant_id: `grant-${i}`,
    });
  for (let i = 1; i <= 12; i++)
    rows.push({ id: `grant-${i}`, kind: 'Grant', payload: { accountId: u((i % 7) + 1), clientId: 'web-app' }, expiresInHours: 720 });
  for (let i = 1; i <= 8; i++)
    rows.push({ id: `rt-${i}`, kind: 'RefreshToken', payload: { accountId: u((i % 7) + 1) }, expiresInHours: 336, grant_id: `grant-${i}` });
  for (let i = 1; i <= 8; i++) rows.push({ id: `interaction-${i}`, kind: 'Interaction', payload: { prompt: 'login' }, expiresInHours: -1 });
  return rows;
}

export async function seedDemo(db: DemoDb): Promise<void> {
  await db.transaction().execute(async (trx) => {
    for (const user of DEMO_USERS) {
      await trx
        .insertInto('users')
        .values(user)
        .onConflict((oc) => oc.column('id').doUpdateSet({ email: user.email, name: user.name, is_active: user.is_active }))
        .execute();
    }
    const clients = [
      { client_id: 'web-app', name: 'Web app', redirect_uris: JSON.stringify(['https://app.example.com/cb']) },
      { client_id: 'desktop-app', name: 'Desktop app', redirect_uris: JSON.stringify(['http://127.0.0.1/cb']) },
      { client_id: 'cli', name: 'CLI', redirect_uris: JSON.stringify([]) },
      { client_id: 'admin-portal', name: 'Admin portal', redirect_uris: JSON.stringify(['https://admin.example.com/cb']) },
    ];
    for (const client of clients) {
      await trx
        .insertInto('oauth_clients')
        .values(client)
        .onConflict((oc) => oc.column('client_id').doNothing())
        .execute();
    }
    const models = ['gpt-4o', 'gpt-4o-mini', 'claude-sonnet', 'claude-haiku', 'llama-3-70b', 'mistral-large'];
    for (const id of models) {
      await trx
        .insertInto('models')
        .values({ id, name: id, provider: id.split('-')[0]! })
        .onConflict((oc) => oc.column('id').doNothing())
        .execute();
    }
    for (const row of oidcRows()) {
      const expires = row.expiresInHours === null ? null : sql`now() + make_interval(hours => ${row.expiresInHours})`;
      await trx
        .insertInto('oidc_models')
        .values({
          id: row.id,
          kind: row.kind,
          payload: JSON.stringify(row.payload),
          expires_at: expires,
          grant_id: row.grant_id ?? null,
          uid: row.uid ?? null,
        })
        .onConflict((oc) => oc.column('id').doUpdateSet({ payload: JSON.stringify(row.payload), expires_at: expires }))
        .execute();
    }
    // Children of users, reached by ON DELETE CASCADE / SET NULL: replaced wholesale so reruns stay exact.
    await trx.deleteFrom('credit_allocation').execute();
    await trx.deleteFrom('subscriptions').execute();
    await trx.deleteFrom('usage_events').execute();
    for (const [i, user] of DEMO_USERS.entries()) {
      await trx
        .insertInto('credit_allocation')
        .values([
          { user_id: user.id, amount: 1000 },
          { user_id: user.id, amount: 250 * (i + 1) },
        ])
        .execute();
      await trx
        .insertInto('subscriptions')
        .values({ user_id: user.id, plan: i % 2 ? 'pro' : 'free', status: user.is_active ? 'active' : 'cancelled' })
        .execute();
      await trx
        .insertInto('usage_events')
        .values([{ user_id: user.id, model_id: models[i % models.length]!, tokens: 100 * (i + 1) }])
        .execute();
    }
  });
}
