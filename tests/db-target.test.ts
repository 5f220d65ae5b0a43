import { sql } from 'kysely';
import { withTarget, type TargetDatabase } from '../src/db/target.js';
import { ExitCode, SafeRunError } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';

/** A logger that keeps its warnings, to count them. */
function warningLogger(): Logger & { readonly warnings: string[] } {
  const warnings: string[] = [];
  const ignore = (): void => {};
  return { warnings, debug: ignore, info: ignore, error: ignore, warn: (msg: string) => void warnings.push(msg) };
}

const UNREACHABLE = 'postgres://app@127.0.0.1:1/app';

/** The one door to a command's target database: opened once, on first need, and always closed. */
describe('withTarget', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase('target');
  });
  afterAll(async () => {
    await t.drop();
  });

  it('opens the target once however often it is asked, and closes it when the command ends', async () => {
    const kept: TargetDatabase[] = [];
    await withTarget(t.url, async (target) => {
      const first = await target.open();
      expect(await target.open()).toBe(first);
      expect(await target.openIfPossible(warningLogger())).toBe(first);
      const { rows } = await sql<{ n: number }>`select 1 as n`.execute(first.db);
      expect(rows).toEqual([{ n: 1 }]);
      kept.push(first);
    });
    // A handle kept past the command is closed: it cannot be used to keep a session around.
    await expect(sql`select 1`.execute(kept[0]!.db)).rejects.toThrow();
  });

  it('closes the target when the command throws', async () => {
    const kept: TargetDatabase[] = [];
    const failing = withTarget(t.url, async (target) => {
      kept.push(await target.open());
      throw new Error('the command failed');
    });
    await expect(failing).rejects.toThrow('the command failed');
    await expect(sql`select 1`.execute(kept[0]!.db)).rejects.toThrow();
  });

  it('an unreachable database is one warning for the log-only readers, and exit 2 for those that need it', async () => {
    const log = warningLogger();
    await withTarget(UNREACHABLE, async (target) => {
      expect(await target.openIfPossible(log)).toBeNull();
      expect(await target.openIfPossible(log)).toBeNull();
      const error = await target.open().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SafeRunError);
      expect((error as SafeRunError).exitCode).toBe(ExitCode.usage);
      expect((error as SafeRunError).message).toContain('connection refused');
    });
    expect(log.warnings).toHaveLength(1);
  });

  it('no database configured: the log-only readers go on silently, the others get a usage error', async () => {
    const log = warningLogger();
    await withTarget(undefined, async (target) => {
      expect(await target.openIfPossible(log)).toBeNull();
      await expect(target.open()).rejects.toBeInstanceOf(SafeRunError);
    });
    expect(log.warnings).toEqual([]);
  });

  it('a command that never asks opens nothing', async () => {
    await expect(withTarget(UNREACHABLE, async () => 'done')).resolves.toBe('done');
  });
});
