import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';

/**
 * Which build and which Node a start-up snapshot was made by (src/startup-snapshot.ts). V8
 * starts from a blob only with the very binary that wrote it and refuses it otherwise, after
 * the process has started; so the blob's `.id` file names the bundle directory it was built in
 * and the Node binary (real path, size, modification time in seconds), and a blob is used only
 * when both match. bin/safe-run compares the same three lines in shell.
 */
export function blobIdentity(bundleDir: string, nodeBinary: string): string {
  const node = realpathSync(nodeBinary);
  const { size, mtimeMs } = statSync(node);
  return `${bundleDir}\n${node}\n${size} ${Math.floor(mtimeMs / 1000)}\n`;
}

/** Whether this Node (process.execPath) may start from the blob: it was built here, by this binary. */
export function blobFits(blob: string, bundleDir: string): boolean {
  try {
    return existsSync(blob) && readFileSync(`${blob}.id`, 'utf8') === blobIdentity(bundleDir, process.execPath);
  } catch {
    return false;
  }
}
