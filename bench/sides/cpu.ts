import { execa } from 'execa';
import { timeMs } from '../measure.js';

/**
 * The machine's own ceiling for two-way parallelism: the same fixed CPU-bound job (sha256
 * over a buffer) run once alone and then twice at the same time in separate processes.
 * 2 × alone / together is the best speedup any 2-process work (pg_dump -j2 included) can
 * get here; on shared or hyper-threaded vCPUs it is well below 2.
 */
const JOB = `
const { createHash } = require('node:crypto');
const buf = Buffer.alloc(1 << 20, 7);
let h = createHash('sha256');
for (let i = 0; i < ${600}; i++) h.update(buf);
h.digest('hex');
`;

async function job(): Promise<void> {
  await execa(process.execPath, ['-e', JOB], { stdin: 'ignore' });
}

export async function measureCpuCeiling(rounds: number): Promise<{ aloneMs: number; togetherMs: number; speedup: number }> {
  let alone = 0;
  let together = 0;
  await job();
  for (let r = 0; r < rounds; r++) {
    alone += await timeMs(job);
    together += await timeMs(() => Promise.all([job(), job()]));
  }
  return { aloneMs: alone / rounds, togetherMs: together / rounds, speedup: (2 * alone) / together };
}
