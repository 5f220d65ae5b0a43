import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseJson, runCli } from './helpers/cli.js';

interface Listed {
  readonly name: string;
  readonly description: string;
  readonly touches: Record<string, string[]>;
  readonly critical: string[];
  readonly error?: string;
}

/**
 * `list` (and the critical tables of `snapshot` and `check`) read each script's declarations
 * from a cache keyed by the script's sha256, so they start no sandboxed child and load no SQL
 * parser for a script that has not changed. These tests prove the cache is used, and that it
 * can never answer for a script that changed or for an entry that is not a valid one.
 */
describe('the declarations cache', () => {
  let dir: string;
  let scripts: string;
  let cache: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'safe-run-cache-'));
    scripts = path.join(dir, 'scripts');
    cache = path.join(dir, 'cache');
    mkdirSync(scripts);
    // The TypeScript script's child runs as "nobody" under root: it must be able to read the scripts.
    for (const d of [dir, scripts]) chmodSync(d, 0o755);
    writeFileSync(path.join(dir, 'safe-run.config.json'), JSON.stringify({ scriptsDir: 'scripts' }));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const list = async (): Promise<Map<string, Listed>> => {
    const result = await runCli(['list', '--json'], { cwd: dir, env: { XDG_CACHE_HOME: cache } });
    expect(result.exitCode).toBe(0);
    return new Map(parseJson<Listed[]>(result).map((s) => [s.name, s]));
  };
  const entries = (): string[] => {
    const entryDir = path.join(cache, 'safe-run', 'scripts');
    return readdirSync(entryDir).map((name) => path.join(entryDir, name));
  };
  const entryOf = (script: string): string => {
    const found = entries().find((file) => readFileSync(file, 'utf8').includes(`"name":"${script}"`));
    if (!found) throw new Error(`no cache entry names ${script}`);
    return found;
  };
  /** Changes what a cache entry says while keeping its key: only a listing served from the cache shows it. */
  const rewriteEntry = (file: string, description: string): void => {
    const entry = JSON.parse(readFileSync(file, 'utf8')) as { declarations: { description: string } };
    entry.declarations.description = description;
    writeFileSync(file, JSON.stringify(entry));
  };
  const tsScript = (name: string, description: string, tables = "'sessions'"): string =>
    `import { TABLES } from './_tables';\nexport default { name: '${name}', description: '${description}', touches: { [${tables}]: ['delete'], ...TABLES }, critical: ['users'], async run() {} };\n`;

  it('serves an unchanged script from the cache, and an edited one from the script itself', async () => {
    writeFileSync(path.join(scripts, '_tables.ts'), 'export const TABLES = {};\n');
    writeFileSync(path.join(scripts, 'purge.ts'), tsScript('purge', 'first version'));
    writeFileSync(path.join(scripts, 'old-logs.sql'), '-- @description Purge old logs\n-- @touches logs: delete\ndelete from logs;\n');

    const first = await list();
    expect(first.get('purge')).toMatchObject({ description: 'first version', touches: { 'public.sessions': ['delete'] } });
    expect(first.get('old-logs')).toMatchObject({ description: 'Purge old logs', touches: { 'public.logs': ['delete'] } });
    expect(entries()).toHaveLength(2);

    rewriteEntry(entryOf('purge'), 'served from the cache');
    rewriteEntry(entryOf('old-logs'), 'served from the cache too');
    const cached = await list();
    expect(cached.get('purge')?.description).toBe('served from the cache');
    expect(cached.get('old-logs')?.description).toBe('served from the cache too');

    // An edit changes the sha256: the new declarations are read, whatever the cache holds.
    writeFileSync(path.join(scripts, 'purge.ts'), tsScript('purge', 'second version', "'audit_events'"));
    writeFileSync(
      path.join(scripts, 'old-logs.sql'),
      '-- @description Purge older logs\n-- @touches logs: delete, update\ndelete from logs where id < 10;\n',
    );
    const edited = await list();
    expect(edited.get('purge')).toMatchObject({ description: 'second version', touches: { 'public.audit_events': ['delete'] } });
    expect(edited.get('old-logs')).toMatchObject({ description: 'Purge older logs', touches: { 'public.logs': ['delete', 'update'] } });
    // One entry per script, replaced rather than added to.
    expect(entries()).toHaveLength(2);
  });

  it('reads a TypeScript script again when a module it imports from its directory changes', async () => {
    writeFileSync(path.join(scripts, '_tables.ts'), 'export const TABLES = {};\n');
    writeFileSync(path.join(scripts, 'purge.ts'), tsScript('purge', 'uses helpers'));
    expect(Object.keys((await list()).get('purge')!.touches)).toEqual(['public.sessions']);

    writeFileSync(path.join(scripts, '_tables.ts'), "export const TABLES = { orders: ['update'] };\n");
    expect((await list()).get('purge')!.touches).toEqual({ 'public.sessions': ['delete'], 'public.orders': ['update'] });
  });

  it('treats a corrupt or foreign entry as a miss, reads the script and repairs the entry', async () => {
    writeFileSync(path.join(scripts, '_tables.ts'), 'export const TABLES = {};\n');
    writeFileSync(path.join(scripts, 'purge.ts'), tsScript('purge', 'the real one'));
    await list();
    const entry = entryOf('purge');

    writeFileSync(entry, '{"key": "truncated');
    expect((await list()).get('purge')).toMatchObject({ description: 'the real one', critical: ['public.users'] });
    expect(JSON.parse(readFileSync(entry, 'utf8'))).toMatchObject({ declarations: { description: 'the real one' } });

    // Valid JSON of the wrong shape (a touched table with an unknown operation) is no entry either.
    const valid = JSON.parse(readFileSync(entry, 'utf8')) as { declarations: { description: string; touches: unknown } };
    valid.declarations.description = 'tampered';
    valid.declarations.touches = { 'public.users': ['drop everything'] };
    writeFileSync(entry, JSON.stringify(valid));
    expect((await list()).get('purge')).toMatchObject({ description: 'the real one', touches: { 'public.sessions': ['delete'] } });
  });

  it('forgets the entries of scripts that no longer exist once there are many', async () => {
    const entryDir = path.join(cache, 'safe-run', 'scripts');
    mkdirSync(entryDir, { recursive: true });
    for (let i = 0; i < 300; i++) {
      writeFileSync(
        path.join(entryDir, `gone-${i}.json`),
        JSON.stringify({ key: 'k', declarations: { path: path.join(dir, `gone-${i}.sql`) } }),
      );
    }
    writeFileSync(path.join(scripts, 'old-logs.sql'), '-- @description Purge old logs\n-- @touches logs: delete\ndelete from logs;\n');
    expect((await list()).get('old-logs')?.description).toBe('Purge old logs');
    expect(entries()).toEqual([entryOf('old-logs')]);
  });

  it('never caches a script that failed to load', async () => {
    writeFileSync(path.join(scripts, 'broken.ts'), "export default { name: 'broken', touches: {} };\n");
    const listed = await list();
    expect(listed.get('broken')?.error).toContain('no run function');
    expect(() => entries()).toThrow();
  });
});
