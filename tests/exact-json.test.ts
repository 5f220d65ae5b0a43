import { canonicalJson } from '../src/audit/canonical.js';
import { ExactNumber, parseExact, stringifyExact } from '../src/db/exact-json.js';

/** Kept rows go from PostgreSQL's JSON text to JavaScript and back into an INSERT: no number may move on the way. */
describe('exact JSON for kept rows', () => {
  it('keeps every number a double would change as its literal, and writes it back the same', () => {
    const text = '{"id": 9007199254740993, "n": 12345678901234567890.0123456789, "c": 2.50, "z": -0, "e": 1e+20, "a": [2.50, 1, 0.1]}';
    const row = parseExact(text) as Record<string, unknown>;
    expect(row.id).toEqual(new ExactNumber('9007199254740993'));
    expect(row.c).toEqual(new ExactNumber('2.50'));
    expect(row.a).toEqual([new ExactNumber('2.50'), 1, 0.1]);
    expect(stringifyExact(row)).toBe(
      '{"id":9007199254740993,"n":12345678901234567890.0123456789,"c":2.50,"z":-0,"e":1e+20,"a":[2.50,1,0.1]}',
    );
  });

  it('leaves strings alone, digits, escaped quotes and backslashes included', () => {
    const text = String.raw`{"s": "9007199254740993 \"2.50\" \\u0000n:5", "t": "-0"}`;
    expect(parseExact(text)).toEqual(JSON.parse(text));
    expect(stringifyExact(parseExact(text))).toBe(JSON.stringify(JSON.parse(text)));
  });

  it('gives one canonical form, and one key, for the same number read twice', () => {
    const a = parseExact('{"id": 9007199254740993}');
    const b = parseExact('{ "id" : 9007199254740993 }');
    expect(canonicalJson(a)).toBe(canonicalJson(b));
    expect(canonicalJson(a)).not.toBe(canonicalJson(parseExact('{"id": 9007199254740992}')));
  });
});
