import type { Block, Tone } from './blocks.js';
import type { ChartModel } from './chart.js';
import { escapeHtml } from './escape.js';
import { renderChartSvg } from './svg.js';
import { REPORT_CSS } from './style.js';

/**
 * A single self-contained page: no script, no stylesheet, font or image from anywhere else
 * (a post-mortem is often read offline, attached to a ticket, or printed).
 */
export function renderHtml(blocks: readonly Block[]): string {
  const first = blocks.find((b) => b.type === 'title');
  const pageTitle = first && first.type === 'title' ? escapeHtml(first.text.replace(/`|\*\*/g, '')) : 'safe-run report';
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    // Belt and braces: even a future edit that adds a link cannot make the page fetch anything.
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">`,
    `<title>${pageTitle}</title>`,
    `<style>${REPORT_CSS}</style>`,
    '</head><body><main>',
    ...blocks.map(renderBlock),
    '</main></body></html>',
    '',
  ].join('\n');
}

function renderBlock(block: Block): string {
  switch (block.type) {
    case 'title':
      return `<h1>${inline(block.text)}</h1>`;
    case 'heading':
      return `<h2>${inline(block.text)}</h2>`;
    case 'paragraph':
      return `<p>${inline(block.text)}</p>`;
    case 'list':
      return `<ul>${block.items.map((i) => `<li>${inline(i)}</li>`).join('')}</ul>`;
    case 'table':
      return `<div class="table-wrap"><table><thead><tr>${block.head.map((h) => `<th>${inline(h)}</th>`).join('')}</tr></thead><tbody>${block.rows
        .map((r) => `<tr>${r.map(cell).join('')}</tr>`)
        .join('')}</tbody></table></div>`;
    case 'code':
      return `<pre><code>${escapeHtml(block.text)}</code></pre>`;
    case 'callout':
      return `<aside class="callout ${block.tone}" role="status">${ICONS[block.tone]}<div><p class="callout-title">${inline(block.title)}</p><p>${inline(block.text)}</p></div></aside>`;
    case 'chart':
      return figure(block.chart);
  }
}

/** Counts line up on the right, so 8 and 2,000,000 compare at a glance. */
function cell(text: string): string {
  if (/^-?[\d,.]+( \(.*\))?$/.test(text)) return `<td class="num">${inline(text)}</td>`;
  // A timestamp, an entry (#12 run.post) or a count change (8 → 0) reads as one word.
  if (/^(\d{4}-\d\d-\d\dT[\d:.]+Z|#\d+( [\w.-]+)?|\S+ → \S+)$/.test(text)) return `<td class="nowrap">${inline(text)}</td>`;
  return `<td>${inline(text)}</td>`;
}

function figure(chart: ChartModel): string {
  return [
    '<figure class="chart-figure">',
    `<p class="figure-title">Rows of ${escapeHtml(chart.table)} over time</p>`,
    renderChartSvg(chart),
    `<figcaption><ul class="legend">`,
    `<li><span class="swatch count"></span>rows of ${escapeHtml(chart.table)} at each signed observation (hollow: estimate)</li>`,
    '<li><span class="swatch committed"></span>guarded run, committed</li>',
    '<li><span class="swatch dry-run"></span>dry run (rolled back, changed nothing)</li>',
    '<li><span class="swatch not-committed"></span>run rolled back or failed</li>',
    '<li><span class="swatch outside"></span>window with changes outside any guarded run</li>',
    `</ul>${chart.note ? `<p class="note">${inline(chart.note)}</p>` : ''}</figcaption>`,
    '</figure>',
  ].join('\n');
}

/** Escape first, then turn the two inline marks into tags: nothing in the data becomes markup. */
function inline(text: string): string {
  return escapeHtml(text)
    .replace(/`([^`]*)`/g, '<code>$1</code>')
    .replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>');
}

/** Drawn inline (no icon font to fetch); the colour comes from the callout's class. */
const ICONS: Readonly<Record<Tone, string>> = {
  ok: '<svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><circle cx="12" cy="12" r="11"/><path d="M6.5 12.5l3.5 3.5 7.5-8" fill="none"/></svg>',
  notice:
    '<svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><circle cx="12" cy="12" r="11"/><path d="M12 6.5v7" fill="none"/><circle class="dot" cx="12" cy="17.3" r="1.4"/></svg>',
  alarm:
    '<svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><path d="M12 1.8L23 21.5H1z"/><path d="M12 8.5v6.5" fill="none"/><circle class="dot" cx="12" cy="18.2" r="1.4"/></svg>',
};
