/**
 * The line of a SQL text holding `position` (characters, 1-based, as PostgreSQL reports
 * it) with a caret under it: what a script's error and a refused statement point with.
 */
export function caretAt(text: string, position: number): string {
  const before = text.slice(0, position - 1);
  const lineStart = before.lastIndexOf('\n') + 1;
  const lineEnd = text.indexOf('\n', lineStart);
  const lineNo = before.split('\n').length;
  const line = text.slice(lineStart, lineEnd === -1 ? undefined : lineEnd);
  const prefix = `line ${lineNo}: `;
  return `${prefix}${line}\n${' '.repeat(prefix.length + position - 1 - lineStart)}^`;
}
