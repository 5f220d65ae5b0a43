import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from '../zod.js';
import { EVIDENCE_DIR_MODE, EVIDENCE_FILE_MODE } from '../audit/modes.js';
import { errorMessage } from '../errors.js';
import { OperationSchema, type TableKey } from '../records/index.js';
import type { LoadedScript } from '../script/load.js';

/**
 * What a TypeScript script declared the last time a run described it, kept so that the next
 * run can start its exact counts and its backup while the script's child is still starting
 * (a Node start-up and the module's import: a few hundred milliseconds, which the backup
 * used to wait out).
 *
 * Only a hint: the run checks it against the declarations the child reads, and redoes what
 * the hint got wrong on the same exported snapshot (see pipeline.ts). So the file is not
 * evidence and is not signed: an edited, stale or garbage hint costs at most a second backup,
 * a missing or unreadable one costs nothing but the wait it would have saved.
 */
export type DeclarationHint = Pick<LoadedScript, 'name' | 'sha256' | 'touches' | 'critical'>;

const hintFile = z
  .object({
    format: z.literal(1),
    name: z.string().min(1),
    /** The source the declarations were read from: an edit since is a hint from an older version. */
    sha256: z.string(),
    touches: z.record(z.string(), z.array(OperationSchema)),
    critical: z.array(z.string()),
  })
  .strict();

/** A name safe as a file name as it is (script names come from file names); others get no hint. */
const PLAIN_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,200}$/;

/** `<evidenceDir>/hints/<script>.json`: beside the run's other state, readable by the operator who runs it. */
export function declarationHintPath(evidenceDir: string, scriptName: string): string | null {
  return PLAIN_NAME.test(scriptName) ? path.join(evidenceDir, 'hints', `${scriptName}.json`) : null;
}

/** The hint for this script name, or null: none yet, another script's, or unreadable. Never throws. */
export async function readDeclarationHint(evidenceDir: string, scriptName: string): Promise<DeclarationHint | null> {
  const file = declarationHintPath(evidenceDir, scriptName);
  if (!file) return null;
  try {
    const parsed = hintFile.safeParse(JSON.parse(await readFile(file, 'utf8')));
    if (!parsed.success || parsed.data.name !== scriptName) return null;
    const { name, sha256, touches, critical } = parsed.data;
    return { name, sha256, touches, critical };
  } catch {
    return null;
  }
}

/** Whether `script` declares what `hint` says: the same tables touched, with the same operations, and the same critical tables. */
export function hintMatches(hint: DeclarationHint | null, script: DeclarationHint): boolean {
  return (
    hint !== null &&
    hint.sha256 === script.sha256 &&
    JSON.stringify([hint.touches, hint.critical]) === JSON.stringify([script.touches, script.critical])
  );
}

/**
 * Kept after a successful describe, under the name the run was called by. Written whole and
 * renamed into place, so a concurrent run reads the old hint or the new one, never half of
 * one. A hint that cannot be written is no error: the next run waits for its child, as
 * before. Resolves with why it was not written, for the debug log.
 */
export async function writeDeclarationHint(evidenceDir: string, scriptName: string, script: DeclarationHint): Promise<string | null> {
  const file = declarationHintPath(evidenceDir, scriptName);
  if (!file) return 'the script name is not a plain file name';
  const temporary = `${file}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  const body: z.infer<typeof hintFile> = {
    format: 1,
    name: scriptName,
    sha256: script.sha256,
    touches: script.touches as Record<TableKey, z.infer<typeof OperationSchema>[]>,
    critical: [...script.critical],
  };
  try {
    await mkdir(path.dirname(file), { recursive: true, mode: EVIDENCE_DIR_MODE });
    await writeFile(temporary, `${JSON.stringify(body)}\n`, { mode: EVIDENCE_FILE_MODE });
    await rename(temporary, file);
    return null;
  } catch (error) {
    await unlink(temporary).catch(() => {});
    return errorMessage(error);
  }
}
