import { matchDurationMs, parseDurationMs } from '../src/config/duration.js';
import { rawConfigSchema } from '../src/config/schema.js';
import { parseSince } from '../src/commands/since.js';

/** One duration grammar for config timeouts and `--since`: the union of what each accepted before. */
describe('durations', () => {
  it.each([
    ['500ms', 500],
    ['10s', 10_000],
    ['1.5s', 1500],
    ['90m', 5_400_000],
    ['5min', 300_000],
    ['5 min', 300_000],
    ['2h', 7_200_000],
    ['3d', 259_200_000],
    ['1w', 604_800_000],
  ])('%s is %d ms', (text, ms) => {
    expect(matchDurationMs(text)).toBe(ms);
    expect(parseDurationMs(text)).toBe(ms);
  });

  it.each(['', '10', 'ms', '-5s', '1y', '1mo', '5 minutes', '1e3s'])('refuses %j', (text) => {
    expect(matchDurationMs(text)).toBeNull();
    expect(() => parseDurationMs(text)).toThrow(expect.objectContaining({ exitCode: 2 }));
  });

  it('accepts the same units in the config and in --since', () => {
    const now = new Date('2025-11-14T12:00:00Z');
    for (const text of ['500ms', '90m', '5min', '3d', '1w']) {
      expect(rawConfigSchema.safeParse({ statementTimeout: text }).success).toBe(true);
      expect(parseSince(text, now).getTime()).toBe(now.getTime() - matchDurationMs(text)!);
    }
    expect(rawConfigSchema.safeParse({ lockTimeout: '1y' }).success).toBe(false);
  });
});
