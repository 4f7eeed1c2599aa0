/** The iterative check of `details` (events/limits.ts). */
import { detailsIssues, type EventLimits } from '../../src/events/limits';

const limits: EventLimits = { maxBytes: 32_768, maxDepth: 3, maxStringLength: 8, maxKeys: 3 };
const paths = (v: unknown) => detailsIssues(v, limits).map((i) => [i.path.join('.'), i.message]);

describe('detailsIssues', () => {
  it('accepts a JSON object within every limit', () => {
    expect(detailsIssues({ a: [1, 'two', null, true, { b: -0.5 }], c: {} }, limits)).toEqual([]);
  });

  it('names the path of every violated limit', () => {
    expect(paths({ a: { b: { c: { d: 1 } } } })).toEqual([['a.b.c', 'nesting depth 4 exceeds the limit of 3']]);
    expect(paths({ s: 'x'.repeat(9) })).toEqual([['s', 'string is 9 characters; the limit is 8']]);
    expect(paths({ o: { a: 1, b: 2, c: 3, d: 4 } })).toEqual([['o', 'object has 4 keys; the limit is 3']]);
    expect(paths({ n: Infinity })).toEqual([['n', 'number is not finite']]);
  });

  it('refuses text that cannot be canonicalized or stored, in values and keys, naming a bad key by position', () => {
    expect(paths({ v: 'a\ud800' })).toEqual([['v', 'contains a lone surrogate (not well-formed Unicode, RFC 8785 §3.1)']]);
    expect(paths({ ok: 1, 'b\u0000': 1 })).toEqual([['(key 1)', 'contains a NUL character, which cannot be stored']]);
    expect(paths({ ['k'.repeat(9)]: 1 })).toEqual([['(key 0)', 'key is 9 characters; the limit is 8']]);
    expect(paths(JSON.parse('{"__proto__":{"polluted":true}}'))).toEqual([['__proto__', 'the key "__proto__" is reserved']]);
  });

  it('refuses what is not a JSON object', () => {
    for (const v of [null, [], 'x', 1, new Date(), new Map()]) expect(paths(v)).toEqual([['', 'must be a JSON object']]);
    expect(paths({ d: new Date(0), u: undefined, f: () => 1 })).toHaveLength(3);
  });

  it('stops collecting after 100 issues however wide the input', () => {
    const wide = Object.fromEntries(Array.from({ length: 3 }, (_, i) => [`k${i}`, Array.from({ length: 5000 }, () => 'x'.repeat(9))]));
    expect(detailsIssues(wide, { ...limits, maxKeys: 10 })).toHaveLength(100);
  });
});
