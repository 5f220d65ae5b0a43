/**
 * A report is a list of blocks, rendered to Markdown or HTML by report-md.ts and
 * report-html.ts. Building the content once keeps the two formats saying the same thing.
 *
 * Inline text may use `code` and **bold**, the two marks both renderers understand.
 */
export type Block =
  | { readonly type: 'title'; readonly text: string }
  | { readonly type: 'heading'; readonly text: string }
  | { readonly type: 'paragraph'; readonly text: string }
  | { readonly type: 'list'; readonly items: readonly string[] }
  | { readonly type: 'table'; readonly head: readonly string[]; readonly rows: readonly (readonly string[])[] }
  | { readonly type: 'code'; readonly text: string };

export const title = (text: string): Block => ({ type: 'title', text });
export const heading = (text: string): Block => ({ type: 'heading', text });
export const paragraph = (text: string): Block => ({ type: 'paragraph', text });
export const list = (items: readonly string[]): Block => ({ type: 'list', items });
export const table = (head: readonly string[], rows: readonly (readonly string[])[]): Block => ({ type: 'table', head, rows });
export const code = (text: string): Block => ({ type: 'code', text });

/** Inline code that survives backticks in the value (a table name never has one, a path might). */
export function inlineCode(value: string): string {
  return `\`${value.replace(/`/g, "'")}\``;
}
