import type { Block } from './blocks.js';

/** A single self-contained page: no scripts, no external assets, printable. */
export function renderHtml(blocks: readonly Block[]): string {
  const first = blocks.find((b) => b.type === 'title');
  const pageTitle = first && first.type === 'title' ? escapeHtml(first.text.replace(/`|\*\*/g, '')) : 'safe-run report';
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>${pageTitle}</title>`,
    '<style>body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;line-height:1.45}',
    'table{border-collapse:collapse;font-size:.9rem}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}',
    'code,pre{font-family:ui-monospace,monospace;font-size:.85rem}pre{background:#f6f6f6;padding:.75rem;overflow-x:auto}</style>',
    '</head><body>',
    ...blocks.map(renderBlock),
    '</body></html>',
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
      return `<table><thead><tr>${block.head.map((h) => `<th>${inline(h)}</th>`).join('')}</tr></thead><tbody>${block.rows
        .map((r) => `<tr>${r.map((c) => `<td>${inline(c)}</td>`).join('')}</tr>`)
        .join('')}</tbody></table>`;
    case 'code':
      return `<pre><code>${escapeHtml(block.text)}</code></pre>`;
  }
}

/** Escape first, then turn the two inline marks into tags: nothing in the data becomes markup. */
function inline(text: string): string {
  return escapeHtml(text)
    .replace(/`([^`]*)`/g, '<code>$1</code>')
    .replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>');
}

export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}
