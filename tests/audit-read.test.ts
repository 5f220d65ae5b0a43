import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readLinesBackward } from '../src/audit/read.js';

/** Reading the log from its end: every line exactly once, newest first, across block edges. */
describe('readLinesBackward', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'safe-run-read-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const backward = async (content: string): Promise<string[]> => {
    const file = path.join(dir, 'audit.jsonl');
    writeFileSync(file, content);
    const out: string[] = [];
    for await (const line of readLinesBackward(file)) out.push(line);
    return out;
  };

  it('yields lines newest first, with or without a final newline', async () => {
    expect(await backward('a\nbb\nccc\n')).toEqual(['ccc', 'bb', 'a']);
    expect(await backward('a\nbb\nccc')).toEqual(['ccc', 'bb', 'a']);
    expect(await backward('')).toEqual([]);
    expect(await backward('\n')).toEqual([]);
  });

  it('keeps lines whole across 1 MiB block boundaries', async () => {
    const lines = Array.from({ length: 300 }, (_, i) => `${i}:${'x'.repeat(7000 + i)}`);
    expect(await backward(`${lines.join('\n')}\n`)).toEqual([...lines].reverse());
  });

  it('yields nothing for a missing file', async () => {
    const out: string[] = [];
    for await (const line of readLinesBackward(path.join(dir, 'missing.jsonl'))) out.push(line);
    expect(out).toEqual([]);
  });
});
