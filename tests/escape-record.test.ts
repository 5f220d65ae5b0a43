import { sql } from 'kysely';
import { ulid } from 'ulid';
import { openAuditLog } from '../src/audit/log.js';
import { loadConfig } from '../src/config/load.js';
import { createDb } from '../src/db/connection.js';
import { parseDatabaseUrl, redactUrl } from '../src/db/url.js';
import { silentLogger } from '../src/logger.js';
import { recordEscape } from '../src/run/escape.js';
import { watchInterrupts } from '../src/run/interrupt.js';
import { readOperator } from '../src/run/operator.js';
import type { RunIntentBody } from '../src/records/index.js';
import { loadScriptByName } from '../src/script/load.js';
import { takeSnapshot } from '../src/snapshot/take.js';
import { parseJson } from './helpers/cli.js';
import { countRows } from './helpers/db.js';
import { createWorkspace, type Workspace } from './helpers/workspace.js';

/**
 * The policy and the server leave no known way for a script to end the guarded transaction,
 * so an escape cannot be provoked through the CLI. The recording is tested on its own: a
 * session commits a delete by itself after a run's intent, exactly as an escaped script
 * would, and what the runner records then must be the real change, given to that run.
 */
describe('an escaped script is recorded with what it really did', () => {
  let ws: Workspace;
  beforeEach(async () => {
    ws = await createWorkspace();
  });
  afterEach(async () => {
    await ws.cleanup();
  });

  it('records the committed deletes as the run’s, marked escaped, and blame gives them to the run', async () => {
    const config = await loadConfig({ cwd: ws.cwd, env: { ...process.env, ...ws.env } });
    const url = parseDatabaseUrl(ws.t.url);
    const db = createDb(url, { maxConnections: 4 });
    const scriptDb = createDb(url, { maxConnections: 1 });
    const interrupt = watchInterrupts();
    try {
      const audit = await openAuditLog({ evidenceDir: config.evidenceDir, signingKeyPath: config.signingKey });
      const script = await loadScriptByName('cleanup-invalid-sessions', config.scriptsDirs);
      const { snapshot: pre } = await takeSnapshot(db, {
        url,
        exactTables: new Set(['public.users']),
        exactCountThreshold: config.exactCountThreshold,
      });
      const runId = ulid();
      const intent: RunIntentBody = {
        script: {
          name: script.name,
          kind: script.kind,
          path: script.path,
          sha256: script.sha256,
          git: null,
          touches: script.touches,
          limits: script.limits,
          critical: script.critical,
        },
        args: [],
        dryRun: false,
        operator: await readOperator(),
        host: 'test',
        reason: null,
        url: redactUrl(url),
        snapshot: pre,
        backup: {
          scope: 'none',
          status: 'skipped',
          path: null,
          format: null,
          sha256: null,
          bytes: 0,
          tables: [],
          pgDump: null,
          durationMs: 0,
        },
      };
      await audit.append('run.intent', intent, { runId });

      // The escape: the script's own session deletes users and commits, outside any guard.
      await sql`delete from users where email like '%example.com'`.execute(scriptDb);
      const { outcome } = await recordEscape({
        db,
        scriptDb,
        session: db,
        config,
        script,
        args: [],
        dryRun: false,
        runId,
        pre,
        drift: [],
        cascadeFrom: {},
        exactTables: new Set(),
        audit,
        interrupt,
        log: silentLogger,
        xid: '1',
        lsn: '0/0',
        trust: 'superuser',
        timings: {},
        error: null,
      });

      expect(outcome.status).toBe('escaped');
      expect(outcome.changes['public.users']?.deleted).toBe(3);
      expect(outcome.violations.map((v) => v.rule)).toEqual(expect.arrayContaining(['escaped', 'undeclared-table']));
      expect(await countRows(ws.t.db, 'users')).toBe(5);

      const blame = parseJson<{
        changes: { before: number; after: number; escaped?: boolean; attribution: { type: string; runId?: string } }[];
      }>(await ws.cli(['blame', 'users', '--json']));
      expect(blame.changes).toEqual([
        expect.objectContaining({ before: 8, after: 5, escaped: true, attribution: expect.objectContaining({ type: 'run', runId }) }),
      ]);
      const show = await ws.cli(['show', runId]);
      expect(show.stdout).toMatch(/escaped/i);
    } finally {
      interrupt.dispose();
      await scriptDb.destroy();
      await db.destroy();
    }
  });
});
