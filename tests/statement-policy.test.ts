import fc from 'fast-check';
import { SafeRunError } from '../src/errors.js';
import { GUARDED_SETTINGS, refusedStatements, splitStatements, type PolicyRule } from '../src/guard/statement-policy.js';

/** The statement policy on PostgreSQL's own grammar: no database, only the parser. */
const rules = async (sql: string): Promise<PolicyRule[]> => (await refusedStatements(sql)).map((r) => r.rule);

describe('refusedStatements', () => {
  it.each([
    ['begin', 'transaction-control'],
    ['start transaction isolation level serializable', 'transaction-control'],
    ['commit', 'transaction-control'],
    ['commit and chain', 'transaction-control'],
    ['end', 'transaction-control'],
    ['rollback', 'transaction-control'],
    ['abort', 'transaction-control'],
    ["prepare transaction 'x'", 'transaction-control'],
    ["commit prepared 'x'", 'transaction-control'],
    ["rollback prepared 'x'", 'transaction-control'],
    ['set role postgres', 'role-change'],
    ['reset role', 'role-change'],
    ['set local role postgres', 'role-change'],
    ['set session authorization postgres', 'role-change'],
    ['reset session authorization', 'role-change'],
    ['set session_replication_role = replica', 'guarded-setting'],
    ['set local statement_timeout = 0', 'guarded-setting'],
    ['set "Lock_Timeout" to 0', 'guarded-setting'],
    ['reset track_counts', 'guarded-setting'],
    ['reset all', 'guarded-setting'],
    ['set transaction read only', 'guarded-setting'],
    ["select set_config('statement_timeout', '0', true)", 'set-config'],
    ["select pg_catalog.set_config('role'::text, 'postgres', false)", 'set-config'],
    ["select set_config(lower('ROLE'), 'postgres', false)", 'set-config'],
    ['select set_config($1, $2, false)', 'set-config'],
    ["select dblink_exec('dbname=x', 'delete from users')", 'outside-transaction'],
    ["select * from public.dblink('dbname=x', 'select 1') as t(a int)", 'outside-transaction'],
    ['select pg_terminate_backend(pid) from pg_stat_activity', 'other-sessions'],
    ['select pg_cancel_backend(1)', 'other-sessions'],
    ['select pg_reload_conf()', 'server-config'],
    ['select pg_stat_reset()', 'statistics'],
    ['select pg_stat_reset_single_table_counters(1)', 'statistics'],
    ['select pg_stat_clear_snapshot()', 'statistics'],
    ["select lo_import('/etc/passwd')", 'server-files'],
    ["select lo_export(1, '/tmp/x')", 'server-files'],
    ["select pg_file_write('x', 'y', false)", 'server-files'],
    ['select pg_advisory_unlock_all()', 'run-lock'],
    ["copy users to program 'cat'", 'server-files'],
    ["copy users from '/tmp/users.csv'", 'server-files'],
    ['alter system set track_counts = off', 'server-config'],
    ["load 'auto_explain'", 'server-config'],
  ])('refuses %s', async (sql, rule) => {
    expect(await rules(sql)).toContain(rule);
  });

  it.each([
    'savepoint a',
    'release savepoint a',
    'rollback to savepoint a',
    'set local search_path = public',
    'set work_mem = 65536',
    "select set_config('application_name', 'cleanup', true)",
    "select set_config('search_path'::text, 'public', true)",
    "delete from users where email like '%commit%'",
    'create table t (id int primary key); alter table t add column x text; drop table t',
    'copy users to stdout',
    "select 'ERROR', $$commit$$, E'\\'rollback', \"begin\" from users",
    'select pg_advisory_xact_lock(1)',
    "do $$ begin insert into t values (1); raise exception 'ERROR here'; end $$",
    "create function f() returns int language sql as 'select 1'",
    'create function g() returns int language sql begin atomic; select 1; end',
  ])('allows %s', async (sql) => {
    expect(await rules(sql)).toEqual([]);
  });

  it.each([
    ['explain analyze', 'explain (analyze) select pg_terminate_backend(1)', 'other-sessions'],
    ['prepare', 'prepare p as select set_config($1, $2, false)', 'set-config'],
    ['a CTE', 'with x as (select pg_stat_reset()) delete from users', 'statistics'],
    ['a sub-select', 'delete from users where id in (select dblink_exec(1) from t)', 'outside-transaction'],
    ['a rule action', 'create rule r as on insert to t do also select pg_reload_conf()', 'server-config'],
    ['a function SET clause', "create function f() returns int language sql set statement_timeout = 0 as 'select 1'", 'guarded-setting'],
    ['ALTER ROLE ... SET', 'alter role current_user set session_replication_role = replica', 'guarded-setting'],
    ['ALTER DATABASE ... SET', 'alter database x reset statement_timeout', 'guarded-setting'],
    ['a UNION arm', 'select 1 union all select pg_stat_reset()', 'statistics'],
    ['CALL', 'call public.dblink_exec_proc()', 'outside-transaction'],
    ['BEGIN ATOMIC', 'create procedure p() language sql begin atomic; commit; end', 'transaction-control'],
    ['a sql body', "create function f() returns void language sql as 'select pg_cancel_backend(1)'", 'other-sessions'],
    ['a DO commit', 'do $$ begin delete from users; commit; end $$', 'transaction-control'],
    ['a DO rollback', 'do $body$ begin rollback; end $body$', 'transaction-control'],
    ['a DO statement', 'do $$ begin set role postgres; end $$', 'role-change'],
    ['a DO PERFORM', 'do $$ begin perform pg_stat_reset(); end $$', 'statistics'],
    ['a DO IF', 'do $$ begin if pg_terminate_backend(1) then null; end if; end $$', 'other-sessions'],
    ['a DO assignment', "do $$ declare x text; begin x := set_config('role', 'postgres', false); end $$", 'set-config'],
    ['a literal EXECUTE', "do $$ begin execute 'set session_replication_role = replica'; end $$", 'guarded-setting'],
    ['a DO in a DO', 'do $a$ begin do $b$ begin commit; end $b$; end $a$', 'transaction-control'],
    [
      'a procedure',
      'create procedure p(n int) language plpgsql as $$ begin delete from t where id = n; commit; end $$',
      'transaction-control',
    ],
    ['another language', "do language plpython3u $$ plpy.execute('commit') $$", 'unchecked-body'],
    ['an unreadable sql body', "create function f() returns int language sql as 'selec 1'", 'unchecked-body'],
  ])('finds it inside %s', async (_where, sql, rule) => {
    expect(await rules(sql)).toContain(rule);
  });

  it('allows a dynamic EXECUTE of a computed string (the end-of-script checks cover it)', async () => {
    expect(await rules("do $$ begin execute format('delete from %I', 't'); end $$")).toEqual([]);
  });

  it('names the statement, its line, and what to do instead', async () => {
    const [refusal] = await refusedStatements('delete from t;\n\n  commit;\nselect 1');
    expect(refusal?.statement.line).toBe(3);
    expect(refusal?.statement.text.trim()).toBe('commit');
    expect(refusal?.reason).toMatch(/^COMMIT is refused: safe-run .* commits it itself when the guards pass/);
  });

  it('exports the guarded settings the runner compares after the script', () => {
    expect(GUARDED_SETTINGS).toEqual(expect.arrayContaining(['statement_timeout', 'role', 'session_authorization', 'track_counts']));
  });
});

describe('splitStatements', () => {
  it('cuts where the grammar cuts, with char offsets past multi-byte text', async () => {
    const text = "select 'é€😀';\n/* ; */ delete from t where a = ';';\nselect 2";
    const statements = await splitStatements(text);
    expect(statements.map((s) => s.text.trim())).toEqual(["select 'é€😀'", "/* ; */ delete from t where a = ';'", 'select 2']);
    expect(text.slice(statements[2]!.offset).trim()).toBe('select 2');
    expect(statements.map((s) => s.line)).toEqual([1, 2, 3]);
  });

  it.each([
    ['a grammar error', 'select 1;\nselect 2;\nselect * fro users;\nselect 3', 3, `line 3: select * fro users;\n${' '.repeat(17)}^`],
    ['an unterminated string', "select 1;\nselect 'abc", 2, "line 2: select 'abc\n               ^"],
  ])('reports %s with its line and a caret', async (_what, text, line, caret) => {
    const error = await splitStatements(text).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SafeRunError);
    expect((error as SafeRunError).exitCode).toBe(2);
    expect((error as SafeRunError).message).toContain(`(line ${line})`);
    expect((error as SafeRunError).message).toContain(caret);
  });
});

/**
 * Hiding places a regular expression gets wrong: comments (nested), dollar quotes with and
 * without tags, escape strings, doubled quotes, quoted identifiers.
 */
const noise = fc.oneof(
  fc.constantFrom('-- a $$ comment\n', "-- it's\n", '/* $$ */', '/* /* nested */ commit; */', "/* ' */", '\n', ' '),
  fc.constantFrom("select E'\\'';", "select 'it''s';", 'select $$ ; commit; $$;', 'select $t$ $$ rollback $$ $t$;'),
  fc.constantFrom('select "begin;";', 'select 1 as "x""y";', "select E'\\\\';", 'select $_1$;$_1$;'),
);

const hidden = fc.constantFrom('commit', 'COMMIT', 'begin', 'rollback', 'end', 'abort', 'start transaction');

describe('a transaction statement among comments and quotes', () => {
  it('is always found', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(noise, { maxLength: 8 }), hidden, fc.array(noise, { maxLength: 8 }), async (before, statement, after) => {
        const text = `${before.join('')}\n${statement};\ndelete from users;\n${after.join('')}`;
        expect(await rules(text)).toContain('transaction-control');
      }),
      { seed: 20240917, numRuns: 300 },
    );
  });

  it('is allowed when it is only inside a string or a comment', async () => {
    const wrap = fc.constantFrom(
      (s: string) => `select '${s}';`,
      (s: string) => `select E'\\'${s}';`,
      (s: string) => `select $$${s};$$;`,
      (s: string) => `select $q$${s};$q$;`,
      (s: string) => `-- ${s};\n`,
      (s: string) => `/* /* */ ${s}; */`,
      (s: string) => `select "${s};";`,
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(noise, { maxLength: 8 }),
        hidden,
        wrap,
        fc.array(noise, { maxLength: 8 }),
        async (before, statement, w, after) => {
          const text = `${before.join('')}\n${w(statement)}\ndelete from users;\n${after.join('')}`;
          expect(await rules(text)).toEqual([]);
        },
      ),
      { seed: 20240918, numRuns: 300 },
    );
  });
});
