import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const TEMPLATE_DB = 'safe_run_template';

/** The repository root, found from the compiled file (dist/tests/... or another build tree). */
export function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'safe-run') return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('safe-run repository root not found');
    dir = parent;
  }
}

export const SCRIPTS_DIR = (): string => path.join(repoRoot(), 'scripts');
