import type { ChartModel } from './chart.js';

/**
 * A report is a list of blocks, rendered to Markdown or HTML by md.ts and html.ts. Building the content once keeps the two formats saying the same thing.
 *
 * Inline text may use `code` and **bold**, the two marks both renderers understand.
 */
export type Block =
  | { readonly type: 'title'; readonly text: string }
  | { readonly type: 'heading'; readonly text: string }
  | { readonly type: 'paragraph'; readonly text: string }
  | { readonly type: 'list'; readonly items: readonly string[] }
  | { readonly type: 'table'; readonly head: readonly string[]; readonly rows: readonly (readonly string[])[] }
  | { readonly type: 'code'; readonly text: string }
  /** The verdict up front: a tone a reader sees before reading, a short title and one sentence. */
  | { readonly type: 'callout'; readonly tone: Tone; readonly title: string; readonly text: string }
  /** Drawn in HTML; Markdown has the same numbers in the timeline table. */
  | { readonly type: 'chart'; readonly chart: ChartModel };

/** ok: nothing to fear; notice: explained by a signed run; alarm: unexplained loss, or evidence that does not verify. */
export type Tone = 'ok' | 'notice' | 'alarm';

export const title = (text: string): Block => ({ type: 'title', text });
export const heading = (text: string): Block => ({ type: 'heading', text });
export const paragraph = (text: string): Block => ({ type: 'paragraph', text });
export const list = (items: readonly string[]): Block => ({ type: 'list', items });
export const table = (head: readonly string[], rows: readonly (readonly string[])[]): Block => ({ type: 'table', head, rows });
export const code = (text: string): Block => ({ type: 'code', text });
export const callout = (tone: Tone, title: string, text: string): Block => ({ type: 'callout', tone, title, text });
export const chart = (model: ChartModel): Block => ({ type: 'chart', chart: model });

/** Inline code that survives backticks in the value (a table name never has one, a path might). */
export function inlineCode(value: string): string {
  return `\`${value.replace(/`/g, "'")}\``;
}
