import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { sql } from 'kysely';
import type { SessionStatement } from '../src/blame/attribute.js';
import type { BlameResult } from '../src/blame/blame.js';
import { createDb, type Db } from '../src/db/connection.js';
import type { RecoverResult } from '../src/restore/recover.js';
import { waitFor } from './helpers/attacks.js';
import { parseJson } from './helpers/cli.js';
import { writeAs } from './helpers/db.js';
import { createWorkspace, type Workspace } from './helpers/workspace.js';

/**
 * What blame tells an operator to do with a statement's kept rows, per operation, and that
 * recover does it (or refuses with the next step); and two sessions that got the same backend
 * pid, told apart by their backend start. Real ledger triggers, real server, built CLI.
 */
const statementsOf = (blame: BlameResult, before: number, after: number): readonly SessionStatement[] => {
  const change = blame.changes.find((c) => c.before === before && c.after === after);
  if (change?.attribution.type !== 'session') throw new Error(`no session attribution for ${before} -> ${after}`);
  return change.attribution.statements;
};

// Each test: users protected with its rows, and a snapshot to count from.
let ws: Workspace;
beforeEach(async () => {
  ws = await createWorkspace({ criticalTables: { users: { maxDropPercent: 50 } } });
  expect((await ws.cli(['protect', 'users', '--keep-rows'])).exitCode).toBe(0);
  expect((await ws.cli(['snapshot'])).exitCode).toBe(0);
}, 120_000);
afterEach(async () => {
  await ws.cleanup();
});

const nameOf = async (db: Db, email: string): Promise<string> =>
  (await sql<{ name: string }>`select name from users where email = ${email}`.execute(db)).rows[0]!.name;

describe('blame: the command that helps with kept rows, per operation', () => {
  it('INSERT: no recover (exit 2 with the next step); UPDATE: recover sets back the old values still as it left them; DELETE: recover', async () => {
    const free = await nameOf(ws.t.db, 'free.user@example.com');
    await writeAs(ws.t.url, 'signup', ["insert into users (email, name) values ('late.signup@example.com', 'Late Signup')"]);
    expect((await ws.cli(['snapshot'])).exitCode).toBe(0);
    await writeAs(ws.t.url, 'fixer', ["update users set name = 'Wrong' where email in ('free.user@example.com', 'pro.user@example.com')"]);
    // Changed again by someone else after the UPDATE: recover must leave it.
    await writeAs(ws.t.url, 'support', ["update users set name = 'Edited Since' where email = 'pro.user@example.com'"]);
    await writeAs(ws.t.url, 'cleaner', ["delete from users where email = 'late.signup@example.com'"]);
    expect((await ws.cli(['snapshot'])).exitCode).toBe(0);

    const blame = parseJson<BlameResult>(await ws.cli(['blame', 'users', '--json']));
    const [insert] = statementsOf(blame, 8, 9);
    const [update, , del] = statementsOf(blame, 9, 8);
    expect([insert!.op, update!.op, del!.op]).toEqual(['INSERT', 'UPDATE', 'DELETE']);
    const text = (await ws.cli(['blame', 'users'])).stdout;
    expect(text).toContain(`inserted rows kept (ledger ${insert!.ledgerId}); nothing to recover, an INSERT removed no row`);
    expect(text).not.toContain(`recover --ledger ${insert!.ledgerId}`);
    expect(text).toContain(
      `old values kept: safe-run recover --ledger ${update!.ledgerId} (sets back the rows still as the UPDATE left them)`,
    );
    expect(text).toContain(`rows kept: safe-run recover --ledger ${del!.ledgerId}`);

    // An INSERT removed nothing: a usage error with the next step, alone or among removals.
    for (const ids of [[insert!.ledgerId], [del!.ledgerId, insert!.ledgerId]]) {
      const refused = await ws.cli(['recover', ...ids.flatMap((id) => ['--ledger', String(id)])]);
      expect(refused.exitCode).toBe(2);
      expect(refused.stderr).toContain(`Ledger statement ${insert!.ledgerId} is an INSERT into public.users`);
      expect(refused.stderr).toContain('safe-run undo <run>');
      expect(refused.stderr).not.toMatch(/\n\s+at /);
    }
    expect(await nameOf(ws.t.db, 'free.user@example.com')).toBe('Wrong');

    const dry = await ws.cli(['recover', '--ledger', String(update!.ledgerId), '--dry-run']);
    expect(dry.exitCode).toBe(0);
    expect(dry.stdout).toContain('left as they are: 1 row(s) of public.users changed since the UPDATE');
    const back = await ws.cli(['recover', '--ledger', String(update!.ledgerId), '--json']);
    expect(back.exitCode).toBe(0);
    expect(parseJson<RecoverResult>(back).tables['public.users']).toMatchObject({ offered: 2, updated: 1, inserted: 0 });
    expect(await nameOf(ws.t.db, 'free.user@example.com')).toBe(free);
    expect(await nameOf(ws.t.db, 'pro.user@example.com')).toBe('Edited Since');
  }, 240_000);
});

/** A session on its own connection, as an out-of-band writer: its backend's pid and start. */
interface Session {
  readonly db: Db;
  readonly pid: number;
  readonly start: string;
}

async function openSession(url: string, applicationName: string, beforeConnect: () => void = () => {}): Promise<Session> {
  const db = createDb(url, { applicationName, maxConnections: 1 });
  beforeConnect(); // the pool connects (the postmaster forks the backend) on the first query
  const { rows } = await sql<{ pid: number; start: string }>`
    select pg_backend_pid() as pid, backend_start::text as start from pg_stat_activity where pid = pg_backend_pid()`.execute(db);
  return { db, pid: rows[0]!.pid, start: rows[0]!.start };
}

const NS_LAST_PID = '/proc/sys/kernel/ns_last_pid';

/** Whether this process may choose the next pid (root, CAP_SYS_ADMIN in its pid namespace): written back unchanged to find out. */
function canChooseNextPid(): boolean {
  try {
    writeFileSync(NS_LAST_PID, readFileSync(NS_LAST_PID, 'utf8').trim());
    return true;
  } catch {
    return false;
  }
}

/**
 * A new backend with the pid an ended one had: the next pid the kernel hands out is chosen
 * (ns_last_pid), then a connection makes the postmaster fork. Any other process forking in
 * between takes the pid first, so it is tried again.
 */
async function sessionWithPid(url: string, applicationName: string, pid: number): Promise<Session> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const session = await openSession(url, applicationName, () => writeFileSync(NS_LAST_PID, String(pid - 1)));
    if (session.pid === pid) return session;
    await session.db.destroy();
  }
  throw new Error(`pid ${pid} could not be given to a new backend in 100 attempts`);
}

const SIX_UPDATES = "do $$ begin for i in 1..6 loop update users set name = name where email = 'free.user@example.com'; end loop; end $$";

describe('blame: two sessions that got the same backend pid', () => {
  it('are two groups, each named with its backend start, never merged', async () => {
    const first = await openSession(ws.t.url, 'nightly-sync');
    await sql.raw(SIX_UPDATES).execute(first.db);
    if (canChooseNextPid()) {
      // A real reuse: the first backend ends, and the next one is given its pid.
      await first.db.destroy();
      await waitFor(() => !existsSync(`/proc/${first.pid}`));
      const second = await sessionWithPid(ws.t.url, 'nightly-sync', first.pid);
      expect(second.start).not.toBe(first.start);
      await sql.raw(SIX_UPDATES).execute(second.db);
      await second.db.destroy();
    } else {
      // Without the right to choose a pid (not root), a reuse cannot be forced: the same
      // backend writes the second batch through the real triggers, and only backend_start of
      // its ledger rows is moved, to what a later backend with this pid would record.
      const { rows } = await sql<{ last: string }>`select coalesce(max(id), 0)::text as last from safe_run.ledger`.execute(ws.t.db);
      await sql.raw(SIX_UPDATES).execute(first.db);
      await first.db.destroy();
      await sql`update safe_run.ledger set backend_start = backend_start + interval '1 hour' where id > ${rows[0]!.last}::int8`.execute(
        ws.t.db,
      );
    }
    await writeAs(ws.t.url, 'seed-script', ["delete from users where email = 'admin.test@rephlo.ai'"]);
    expect((await ws.cli(['snapshot'])).exitCode).toBe(0);

    const statements = statementsOf(parseJson<BlameResult>(await ws.cli(['blame', 'users', '--json'])), 8, 7);
    const updates = statements.filter((s) => s.applicationName === 'nightly-sync');
    expect(updates).toHaveLength(12);
    expect(new Set(updates.map((s) => s.pid)).size).toBe(1);
    const starts = [...new Set(updates.map((s) => s.backendStart))];
    expect(starts).toHaveLength(2);
    expect(updates.every((s) => s.pidReused === true)).toBe(true);

    const text = (await ws.cli(['blame', 'users'])).stdout;
    expect(text).toContain('in 3 group(s) by session and operation');
    for (const start of starts)
      expect(text).toMatch(
        new RegExp(
          `6 UPDATE statements, 6 rows by role postgres, application "nightly-sync", client [^,]+, pid ${first.pid} \\(its session started ${start}\\)`,
        ),
      );
    expect(text).not.toContain('12 UPDATE statements');
  }, 240_000);
});
