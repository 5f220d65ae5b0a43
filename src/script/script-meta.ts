import { z } from 'zod';
import { usageError } from '../errors.js';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';
import { describeExit, startScriptChild } from './child-process.js';
import type { ChildSandbox } from './child-sandbox.js';
import { fromWireError } from './child/protocol.js';

/**
 * A TypeScript script's declarations, read in its child and parsed here: the module is the
 * script author's code, so what it declares is data to validate, not an object to trust.
 */
const operation = z.enum(['insert', 'update', 'delete', 'truncate', 'ddl']);
const limit = z.number().int().nonnegative();
export const scriptMeta = z
  .object({
    name: z.string().min(1),
    description: z.string().default(''),
    touches: z.record(z.string().min(1), z.array(operation)),
    limits: z.record(z.string().min(1), z.object({ insert: limit, update: limit, delete: limit, truncate: limit, ddl: limit }).partial().strict()).default({}),
    critical: z.array(z.string().min(1)).default([]),
    ddl: z.boolean().default(false),
    hasRun: z.literal(true, { message: 'the script has no run function' }),
  })
  .strict();
export type ScriptMeta = z.infer<typeof scriptMeta>;

export type Description = { readonly ok: true; readonly meta: ScriptMeta } | { readonly ok: false; readonly error: Error };

/** One child reads every file's declarations, so `list` of many scripts pays Node's start-up once. */
export async function describeInChild(files: readonly string[], sandbox: ChildSandbox, timeoutMs: number, log: Logger = silentLogger): Promise<Map<string, Description>> {
  const child = startScriptChild(sandbox, log);
  try {
    const answer = new Promise<Map<string, Description>>((resolve, reject) => {
      const timer = setTimeout(() => reject(usageError(`Reading the scripts' declarations did not finish within ${timeoutMs} ms.`, 'A script module must not wait at import time.')), timeoutMs);
      child.onMessage((message) => {
        if (message.type !== 'described') return;
        clearTimeout(timer);
        resolve(new Map(message.scripts.map((s) => [s.file, parseDescription(s)])));
      });
      void child.exited.then((exit) => {
        clearTimeout(timer);
        reject(usageError(`Could not read the declarations of ${files.join(', ')}: ${describeExit(exit)}`));
      });
    });
    child.send({ type: 'describe', files });
    return await answer;
  } finally {
    child.kill();
  }
}

function parseDescription(s: { ok: boolean; meta?: unknown; error?: { name: string; message: string } }): Description {
  if (!s.ok) return { ok: false, error: fromWireError(s.error ?? { name: 'Error', message: 'unknown error' }) };
  const parsed = scriptMeta.safeParse(s.meta);
  if (parsed.success) return { ok: true, meta: parsed.data };
  const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'export'}: ${i.message}`).join('; ');
  return { ok: false, error: new Error(`it does not export a valid script (${problems})`) };
}
