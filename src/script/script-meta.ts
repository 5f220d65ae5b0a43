import { z } from '../zod.js';
import { usageError } from '../errors.js';
import { describeExit, type ScriptChild } from './child-process.js';
import { fromWireError, type ScriptSource } from './child/protocol.js';

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
    limits: z
      .record(z.string().min(1), z.object({ insert: limit, update: limit, delete: limit, truncate: limit, ddl: limit }).partial().strict())
      .default({}),
    critical: z.array(z.string().min(1)).default([]),
    ddl: z.boolean().default(false),
    hasRun: z.literal(true, { message: 'the script has no run function' }),
  })
  .strict();
export type ScriptMeta = z.infer<typeof scriptMeta>;

export type Description = { readonly ok: true; readonly meta: ScriptMeta } | { readonly ok: false; readonly error: Error };

/**
 * One child reads every script's declarations, so `list` of many scripts pays Node's start-up
 * once. The caller owns the child: `list` kills it, a guarded run keeps it to run the script.
 */
export async function describeInChild(
  child: ScriptChild,
  scripts: readonly ScriptSource[],
  timeoutMs: number,
): Promise<Map<string, Description>> {
  const unsubscribe: (() => void)[] = [];
  let timer: NodeJS.Timeout | undefined;
  try {
    const answer = new Promise<Map<string, Description>>((resolve, reject) => {
      const files = scripts.map((s) => s.file).join(', ');
      timer = setTimeout(
        () =>
          reject(
            usageError(
              `Reading the scripts' declarations did not finish within ${timeoutMs} ms.`,
              'A script module must not wait at import time.',
            ),
          ),
        timeoutMs,
      );
      unsubscribe.push(
        child.onMessage((message) => {
          if (message.type === 'described') resolve(new Map(message.scripts.map((s) => [s.file, parseDescription(s)])));
        }),
      );
      void child.exited.then((exit) => reject(usageError(`Could not read the declarations of ${files}: ${describeExit(exit)}`)));
    });
    child.send({ type: 'describe', scripts });
    return await answer;
  } finally {
    clearTimeout(timer);
    for (const off of unsubscribe) off();
  }
}

function parseDescription(s: { ok: boolean; meta?: unknown; error?: { name: string; message: string } }): Description {
  if (!s.ok) return { ok: false, error: fromWireError(s.error ?? { name: 'Error', message: 'unknown error' }) };
  const parsed = scriptMeta.safeParse(s.meta);
  if (parsed.success) return { ok: true, meta: parsed.data };
  const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'export'}: ${i.message}`).join('; ');
  return { ok: false, error: new Error(`it does not export a valid script (${problems})`) };
}
