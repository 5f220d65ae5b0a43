import { sql } from 'kysely';
import { createDb, type Db } from '../src/db/connection.js';
import { withDatabase } from '../src/db/url.js';
import { migrateToLatest } from '../demo/migrate.js';
import { seedDemo } from '../demo/seed.js';
import { progress } from './measure.js';
import { planSessions, planTables, type SessionPlan, type TableSpec } from './plan.js';

/**
 * Builds a bench database: the demo schema and seed, more users and OIDC rows so that the
 * cleanup script has real work, and the generated tables of plan.ts. Rows come from
 * server-side `insert ... select generate_series`; keys and foreign keys are added after
 * the load (one validating join instead of a trigger call per row), then VACUUM ANALYZE so
 * that estimates and visibility maps look like a database that has been running a while.
 */
export interface BenchDatabase {
  readonly name: string;
  readonly url: string;
  readonly tables: readonly TableSpec[];
  readonly sessions: SessionPlan;
  readonly rows: number;
  /** Width of the generated tables' rows (their `note`), or null for the narrow default. */
  readonly rowBytes: number | null;
}

const FORMAT = 'safe-run bench v3';

export async function buildBenchDatabase(
  serverUrl: string,
  name: string,
  tables: number,
  rows: number,
  rowBytes: number | null,
  reuse: boolean,
): Promise<BenchDatabase> {
  const url = withDatabase(serverUrl, name);
  const result: BenchDatabase = { name, url, tables: planTables(tables, rows), sessions: planSessions(rows), rows, rowBytes };
  const marker = `${FORMAT} tables=${tables} rows=${rows}${rowBytes === null ? '' : ` rowBytes=${rowBytes}`}`;
  const admin = createDb(serverUrl, { maxConnections: 1 });
  try {
    if (reuse && (await databaseComment(admin, name)) === marker) {
      progress(`reusing database ${name} (${marker})`);
      return result;
    }
    await sql`drop database if exists ${sql.id(name)} with (force)`.execute(admin);
    await sql`create database ${sql.id(name)}`.execute(admin);
  } finally {
    await admin.destroy();
  }

  const started = performance.now();
  const db = createDb(url, { maxConnections: 3, applicationName: 'safe-run-bench-generate' });
  try {
    await migrateToLatest(db);
    await seedDemo(db);
    await insertUsers(db, result.sessions);
    await insertSessions(db, result.sessions, false);
    await loadTables(db, result.tables, rowBytes);
    await loadGroups(db);
    await vacuumAnalyze(db);
  } finally {
    await db.destroy();
  }
  const admin2 = createDb(serverUrl, { maxConnections: 1 });
  try {
    // Written last, so an interrupted build is never mistaken for a finished one.
    await sql`comment on database ${sql.id(name)} is ${sql.lit(marker)}`.execute(admin2);
  } finally {
    await admin2.destroy();
  }
  progress(
    `built ${name}: ${result.tables.length} tables, ${rows.toLocaleString('en')} rows in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  return result;
}

async function databaseComment(db: Db, name: string): Promise<string | null> {
  const { rows } = await sql<{ c: string | null }>`
    select shobj_description(oid, 'pg_database') as c from pg_database where datname = ${name}`.execute(db);
  return rows[0]?.c ?? null;
}

/** Drops a bench database (and whoever is still connected to it) on the server of `serverUrl`. */
export async function dropBenchDatabase(serverUrl: string, name: string): Promise<void> {
  const admin = createDb(withDatabase(serverUrl, 'postgres'), { maxConnections: 1 });
  try {
    await sql`drop database if exists ${sql.id(name)} with (force)`.execute(admin);
  } finally {
    await admin.destroy();
  }
}

/** An empty database of that name on the server of `serverUrl`, whatever an earlier run left there; returns its URL. */
export async function freshBenchDatabase(serverUrl: string, name: string): Promise<string> {
  await dropBenchDatabase(serverUrl, name);
  const admin = createDb(withDatabase(serverUrl, 'postgres'), { maxConnections: 1 });
  try {
    await sql`create database ${sql.id(name)}`.execute(admin);
  } finally {
    await admin.destroy();
  }
  return withDatabase(serverUrl, name);
}

/** Bench users get md5-derived uuids, so sessions can name them without a lookup; every 20th is inactive. */
async function insertUsers(db: Db, plan: SessionPlan): Promise<void> {
  await sql`
    insert into users (id, email, name, is_active)
    select md5('bench-user-' || g)::uuid, 'bench.user' || g || '@example.com', 'Bench User ' || g, g % 20 <> 0
      from generate_series(1, ${plan.users}::int) g
    on conflict (id) do nothing`.execute(db);
}

/**
 * Sessions 1..deletable are what the cleanup deletes: the first half name a missing or an
 * inactive user, the second half are expired. The rest are valid (or unauthenticated, every
 * 20th), plus access tokens the cleanup must leave alone. `onlyDeletable` puts back what a
 * round deleted; deterministic ids make that exact.
 */
export async function insertSessions(db: Db, plan: SessionPlan, onlyDeletable: boolean): Promise<void> {
  const half = Math.floor(plan.deletable / 2);
  const inactiveSlots = Math.floor(plan.users / 20);
  const last = onlyDeletable ? plan.deletable : plan.sessions;
  await sql`
    insert into oidc_models (id, kind, payload, expires_at, uid)
    select 'bench-sess-' || g, 'Session',
           case
             when g <= ${half}::int and g % 2 = 0 then jsonb_build_object('accountId', md5('missing-user-' || g)::uuid)
             when g <= ${half}::int then jsonb_build_object('accountId', md5('bench-user-' || (20 * (1 + g % ${inactiveSlots}::int)))::uuid)
             when g % 20 = 0 then '{}'::jsonb
             else jsonb_build_object('accountId', md5('bench-user-' || (20 * (g % ${inactiveSlots}::int) + 1 + g % 19))::uuid)
           end,
           case when g > ${half}::int and g <= ${plan.deletable}::int then now() - interval '2 hours' else now() + interval '1 day' end,
           'uid-' || g
      from generate_series(1, ${last}::int) g
    on conflict (id) do nothing`.execute(db);
  if (onlyDeletable) return;
  await sql`
    insert into oidc_models (id, kind, payload, expires_at, grant_id)
    select 'bench-at-' || g, 'AccessToken', jsonb_build_object('accountId', md5('bench-user-' || (1 + g % 19))::uuid, 'clientId', 'web-app'),
           now() + interval '1 hour', 'bench-grant-' || (g % 1000)
      from generate_series(1, ${Math.round(plan.sessions / 2)}::int) g`.execute(db);
}

/** Two loaders in parallel (the machine has two cores), biggest tables first; then the foreign keys in plan order. */
async function loadTables(db: Db, specs: readonly TableSpec[], rowBytes: number | null): Promise<void> {
  const rowsOf = new Map(specs.map((s) => [s.name, s.rows]));
  const queue = [...specs].sort((a, b) => b.rows - a.rows);
  let done = 0;
  const worker = async (): Promise<void> => {
    for (let spec = queue.shift(); spec; spec = queue.shift()) {
      await loadTable(db, spec, spec.parent ? rowsOf.get(spec.parent)! : 0, rowBytes);
      done++;
      if (spec.large || done % 50 === 0)
        progress(`  loaded ${spec.name} (${spec.rows.toLocaleString('en')} rows), ${done}/${specs.length} tables`);
    }
  };
  await Promise.all([worker(), worker()]);
  for (const spec of specs) {
    if (!spec.parent) continue;
    await sql`
      alter table ${sql.table(spec.name)} add foreign key (parent_id) references ${sql.table(spec.parent)} (id)
        on delete ${sql.raw(spec.onDelete)}`.execute(db);
  }
}

async function loadTable(db: Db, spec: TableSpec, parentRows: number, rowBytes: number | null): Promise<void> {
  await sql`
    create table ${sql.table(spec.name)} (
      id bigint not null, parent_id bigint, amount integer not null, created_at timestamptz not null, note text not null)`.execute(db);
  await insertRows(db, spec, parentRows, rowBytes);
  await sql`alter table ${sql.table(spec.name)} add primary key (id)`.execute(db);
}

/** A generated table's rows: a pure function of its spec and the row width. */
async function insertRows(db: Db, spec: TableSpec, parentRows: number, rowBytes: number | null): Promise<void> {
  const parentId = spec.parent ? sql`(g % ${parentRows}::bigint) + 1` : sql`null::bigint`;
  // A wide row's note is padded with its own md5, text a real row could hold (below TOAST's
  // threshold it is stored as is, so the table has the size a real one of that width has).
  const note = rowBytes === null ? sql`to_hex(g * 2654435761)` : sql`rpad(to_hex(g * 2654435761), ${rowBytes}::int, md5(g::text))`;
  await sql`
    insert into ${sql.table(spec.name)} (id, parent_id, amount, created_at, note)
    select g, ${parentId}, (g * 7919) % 100000, timestamptz '2024-01-01' + g * interval '1 second', ${note}
      from generate_series(1, ${spec.rows}::bigint) g`.execute(db);
}

/**
 * The issue's cleanup, at its size: `groups` and their `group_properties` (ON DELETE
 * CASCADE, the foreign key indexed as a real schema has it), rows as wide as such tables'
 * (names, descriptions, jsonb settings, text values: ~250 and ~150 bytes). Every 20th
 * group is what the cleanup deletes: 1,000 groups and, by cascade, 2,440 properties, as in
 * the issue. Rows are a pure function of their id, so a round's deletes can be put back.
 */
export const GROUPS = { groups: 20_000, properties: 48_800, deletedGroups: 1_000, deletedProperties: 2_440 } as const;

async function loadGroups(db: Db): Promise<void> {
  await sql`
    create table groups (
      id bigint primary key, account_id bigint not null, name text not null, description text not null,
      settings jsonb not null, created_at timestamptz not null, updated_at timestamptz not null)`.execute(db);
  await sql`
    create table group_properties (
      id bigint primary key, group_id bigint not null references groups (id) on delete cascade,
      key text not null, value text not null, created_at timestamptz not null)`.execute(db);
  await sql`create index group_properties_group_id on group_properties (group_id)`.execute(db);
  await insertGroups(db, false);
}

/** `missingOnly` puts back what a cleanup deleted (parents first, so the foreign key holds). */
export async function insertGroups(db: Db, missingOnly: boolean): Promise<void> {
  const conflict = missingOnly ? sql`on conflict (id) do nothing` : sql``;
  await sql`
    insert into groups (id, account_id, name, description, settings, created_at, updated_at)
    select g, 1 + g % 997, 'group ' || md5('n' || g), repeat(md5('d' || g), 3),
           jsonb_build_object('plan', 'p' || g % 7, 'limits', jsonb_build_object('seats', g % 50, 'storage', g % 1000), 'flags', md5('f' || g)),
           timestamptz '2023-01-01' + g * interval '1 minute', timestamptz '2024-01-01' + g * interval '1 minute'
      from generate_series(1, ${GROUPS.groups}::bigint) g
    ${conflict}`.execute(db);
  // Property p belongs to group ((p - 1) % groups) + 1: 2 or 3 a group, 2.44 on average.
  await sql`
    insert into group_properties (id, group_id, key, value, created_at)
    select p, (p - 1) % ${GROUPS.groups}::bigint + 1, 'property.' || p % 40, md5('v' || p) || md5('w' || p) || md5('x' || p),
           timestamptz '2023-06-01' + p * interval '1 second'
      from generate_series(1, ${GROUPS.properties}::bigint) p
    ${conflict}`.execute(db);
}

async function vacuumAnalyze(db: Db): Promise<void> {
  progress('  vacuum analyze');
  await sql`vacuum analyze`.execute(db);
}

/** The incident-sized demo database: where the template run and the blame history live. */
export async function buildDemoDatabase(serverUrl: string, name: string): Promise<string> {
  const url = await freshBenchDatabase(serverUrl, name);
  const db = createDb(url, { maxConnections: 1 });
  try {
    await migrateToLatest(db);
    await seedDemo(db);
  } finally {
    await db.destroy();
  }
  return url;
}
