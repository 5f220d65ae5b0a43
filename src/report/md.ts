import type { Block } from './blocks.js';

export function renderMarkdown(blocks: readonly Block[]): string {
  return `${blocks
    .map(renderBlock)
    .filter((text) => text !== '')
    .join('\n\n')}\n`;
}

function renderBlock(block: Block): string {
  switch (block.type) {
    case 'title':
      return `# ${block.text}`;
    case 'heading':
      return `## ${block.text}`;
    case 'paragraph':
      return block.text;
    case 'list':
      return block.items.map((i) => `- ${i}`).join('\n');
    case 'table':
      return [row(block.head), row(block.head.map(() => '---')), ...block.rows.map(row)].join('\n');
    case 'code':
      return `\`\`\`\n${block.text}\n\`\`\``;
    case 'callout':
      return `> **${block.title}** ${block.text}`;
    case 'chart':
      return '';
  }
}

/** A pipe inside a cell would start a new column. */
function row(cells: readonly string[]): string {
  return `| ${cells.map((c) => c.replace(/\|/g, '\\|').replace(/\n/g, ' ')).join(' | ')} |`;
}
