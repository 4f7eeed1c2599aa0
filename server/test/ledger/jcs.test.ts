/**
 * RFC 8785 JSON Canonicalization Scheme: the RFC's own examples, its Appendix B number vectors,
 * the cyberphone/json-canonicalization test data (the RFC author's reference implementation) and
 * properties.
 */
import fc from 'fast-check';

import { canonicalize } from '../../src/ledger';

/** A double from its IEEE 754 bit pattern (16 hex digits). */
function ieee754(hex: string): number {
  return Buffer.from(hex, 'hex').readDoubleBE(0);
}

describe('canonicalize (RFC 8785)', () => {
  it('serializes the RFC 8785 §3.2.2 example', () => {
    const input = JSON.parse(
      '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001], ' +
        '"string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", "literals": [null, true, false]}',
    );
    expect(canonicalize(input)).toBe(
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],' +
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  it('sorts keys by UTF-16 code units as in the RFC 8785 §3.2.3 example (the emoji sorts before U+FB33)', () => {
    const input = JSON.parse(
      '{"\\u20ac": "Euro Sign", "\\r": "Carriage Return", "\\ufb33": "Hebrew Letter Dalet With Dagesh", ' +
        '"1": "One", "\\ud83d\\ude00": "Emoji: Grinning Face", "\\u0080": "Control", ' +
        '"\\u00f6": "Latin Small Letter O With Diaeresis"}',
    );
    const out = canonicalize(input);
    expect(out).toBe(
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","ö":"Latin Small Letter O With Diaeresis",' +
        '"€":"Euro Sign","😀":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
  });

  // RFC 8785 Appendix B: IEEE 754 bit patterns and their canonical serialization.
  it.each([
    ['0000000000000000', '0'],
    ['8000000000000000', '0'], // minus zero
    ['0000000000000001', '5e-324'],
    ['8000000000000001', '-5e-324'],
    ['7fefffffffffffff', '1.7976931348623157e+308'],
    ['ffefffffffffffff', '-1.7976931348623157e+308'],
    ['4340000000000000', '9007199254740992'],
    ['c340000000000000', '-9007199254740992'],
    ['4430000000000000', '295147905179352830000'],
    ['44b52d02c7e14af5', '9.999999999999997e+22'],
    ['44b52d02c7e14af6', '1e+23'],
    ['44b52d02c7e14af7', '1.0000000000000001e+23'],
    ['444b1ae4d6e2ef4e', '999999999999999700000'],
    ['444b1ae4d6e2ef4f', '999999999999999900000'],
    ['444b1ae4d6e2ef50', '1e+21'],
    ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
    ['3eb0c6f7a0b5ed8d', '0.000001'],
    ['41b3de4355555553', '333333333.3333332'],
    ['41b3de4355555554', '333333333.33333325'],
    ['41b3de4355555555', '333333333.3333333'],
    ['41b3de4355555556', '333333333.3333334'],
    ['41b3de4355555557', '333333333.33333343'],
    ['becbf647612f3696', '-0.0000033333333333333333'],
    ['43143ff3c1cb0959', '1424953923781206.2'], // round to even
  ])('serializes the Appendix B number %s as %s', (bits, expected) => {
    expect(canonicalize(ieee754(bits))).toBe(expected);
    expect(canonicalize([ieee754(bits)])).toBe(`[${expected}]`);
  });

  it.each([
    ['7fffffffffffffff', 'NaN'],
    ['7ff0000000000000', 'Infinity'],
    ['fff0000000000000', '-Infinity'],
  ])('rejects the Appendix B non-finite number %s (%s)', (bits) => {
    expect(() => canonicalize({ a: [1, ieee754(bits)] })).toThrow(TypeError);
    expect(() => canonicalize({ a: [1, ieee754(bits)] })).toThrow('$.a[1]');
  });

  // cyberphone/json-canonicalization testdata/input/*.json → testdata/output/*.json.
  it('canonicalizes the reference test data (weird.json, values.json)', () => {
    const weird = JSON.parse(
      '{\n  "\\u20ac": "Euro Sign",\n  "1": "One",\n  "\\u0080": "Control\\u007f",\n  "\\ud83d\\ude02": "Smiley",\n' +
        '  "\\u00f6": "Latin Small Letter O With Diaeresis",\n  "\\ufb33": "Hebrew Letter Dalet With Dagesh",\n' +
        '  "</script>": "Browser Challenge"\n}\n',
    );
    expect(canonicalize(weird)).toBe(
      '{"1":"One","</script>":"Browser Challenge","\u0080":"Control\u007f","ö":"Latin Small Letter O With Diaeresis",' +
        '"€":"Euro Sign","😂":"Smiley","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
    const values = JSON.parse(
      '{\n  "numbers": [1E30, 4.50, 333333333.33333329, 2e-3, 0.000000000000000000000000001],\n' +
        '  "escaping": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",\n  "literals": [null, true, false]\n}',
    );
    expect(canonicalize(values)).toBe(
      '{"escaping":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/","literals":[null,true,false],' +
        '"numbers":[1e+30,4.5,333333333.3333333,0.002,1e-27]}',
    );
  });

  it('escapes exactly as RFC 8785 §3.2.2.2: short escapes, \\u00xx for other controls, nothing else', () => {
    const s = '\u0000\u0001\b\t\n\u000b\f\r\u001f "\\/\u007f\u2028\u2029é😀';
    expect(canonicalize(s)).toBe(
      '"\\u0000\\u0001\\b\\t\\n\\u000b\\f\\r\\u001f \\"\\\\/\u007f\u2028\u2029é😀"',
    );
  });

  it('omits undefined members like JSON.stringify and keeps null', () => {
    expect(canonicalize({ b: undefined, a: null, c: { d: undefined } })).toBe('{"a":null,"c":{}}');
  });

  it('writes integers, -0 and exponents with ECMAScript Number-to-String', () => {
    expect(canonicalize([-0, 0, 1, -1, 1e21, 1e-7, 123e-20, 100, 0.1, 2 ** 53])).toBe(
      '[0,0,1,-1,1e+21,1e-7,1.23e-18,100,0.1,9007199254740992]',
    );
  });

  it('sorts nested objects at every level and keeps array order', () => {
    expect(canonicalize({ b: [{ z: 1, a: 2 }, 3], a: { d: true, c: [] }, '': 0 })).toBe(
      '{"":0,"a":{"c":[],"d":true},"b":[{"a":2,"z":1},3]}',
    );
  });

  it('accepts null-prototype objects', () => {
    const o = Object.create(null) as Record<string, unknown>;
    o.b = 1;
    o.a = 2;
    expect(canonicalize(o)).toBe('{"a":2,"b":1}');
  });

  it('handles deep nesting without recursion', () => {
    let v: unknown = 1;
    for (let i = 0; i < 50_000; i++) v = i % 2 ? [v] : { k: v };
    const out = canonicalize(v);
    expect(out.length).toBe(1 + 25_000 * 2 + 25_000 * 6);
  });

  describe('rejects what is not JSON, naming the path', () => {
    class Thing {
      x = 1;
    }
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = { again: cyclic };
    it.each<[string, unknown, string]>([
      ['undefined at top level', undefined, '$'],
      ['undefined in an array', { a: [1, undefined] }, '$.a[1]'],
      ['a hole in an array', { a: [1, , 3] }, '$.a[1]'], // eslint-disable-line no-sparse-arrays
      ['a function', { a: { f: () => 1 } }, '$.a.f'],
      ['a symbol', [Symbol('s')], '$[0]'],
      ['a bigint', { n: 10n }, '$.n'],
      ['NaN', { 'a b': NaN }, '$["a b"]'],
      ['Infinity', [Infinity], '$[0]'],
      ['a Date', { when: new Date(0) }, '$.when'],
      ['a Map', { m: new Map() }, '$.m'],
      ['a class instance', [new Thing()], '$[0]'],
      ['a boxed string', { s: new String('x') }, '$.s'],
      ['a Buffer', { b: Buffer.from('x') }, '$.b'],
      ['a lone high surrogate', { s: 'a\ud800' }, '$.s'],
      ['a lone low surrogate in a key', { 'a\udc00': 1 }, '$["a\\udc00"]'],
      ['a cycle', cyclic, '$.self.again'],
      ['a symbol-keyed property', { [Symbol('k')]: 1 }, '$'],
    ])('%s', (_name, value, path) => {
      expect(() => canonicalize(value)).toThrow(TypeError);
      expect(() => canonicalize(value)).toThrow(path);
    });

    it('says what is wrong, not just where: undefined, holes, and the class of a non-plain object', () => {
      expect(() => canonicalize(undefined)).toThrow(/^JCS: \$ is undefined, which JSON cannot represent$/);
      expect(() => canonicalize([1, , 3])).toThrow(/^JCS: \$\[1\] is undefined \(or a hole\)/); // eslint-disable-line no-sparse-arrays
      expect(() => canonicalize([new Thing()])).toThrow(/^JCS: \$\[0\] is a non-plain object \(Thing\)/);
      const classless: unknown = Object.create(Object.create(Object.create(null)));
      expect(() => canonicalize(classless)).toThrow(/^JCS: \$ is a non-plain object \(unknown class\)/);
    });

    it('rejects a Date whose prototype was swapped for Object.prototype (plain shape, exotic object)', () => {
      const disguised: unknown = Object.setPrototypeOf(new Date(0), Object.prototype);
      expect(() => canonicalize({ d: disguised })).toThrow(/^JCS: \$\.d is a non-plain object/);
    });

    it('allows the same object twice when it is not a cycle', () => {
      const shared = { x: 1 };
      expect(canonicalize({ a: shared, b: [shared] })).toBe('{"a":{"x":1},"b":[{"x":1}]}');
    });
  });

  describe('properties', () => {
    const jsonValue = fc.jsonValue();

    it('is a fixed point through JSON.parse: canonicalize(JSON.parse(canonicalize(x))) === canonicalize(x)', () => {
      fc.assert(
        fc.property(jsonValue, (x) => {
          const c = canonicalize(x);
          expect(canonicalize(JSON.parse(c))).toBe(c);
        }),
        { numRuns: 500 },
      );
    });

    it('is valid JSON that parses back to the same value (up to -0 and key order)', () => {
      fc.assert(
        fc.property(jsonValue, (x) => {
          expect(JSON.parse(canonicalize(x))).toEqual(JSON.parse(JSON.stringify(x)));
        }),
        { numRuns: 300 },
      );
    });

    it('does not depend on key insertion order', () => {
      fc.assert(
        fc.property(
          fc.dictionary(fc.fullUnicodeString(), jsonValue, { maxKeys: 12 }),
          fc.integer({ min: 0, max: 1000 }),
          (obj, seed) => {
            const entries = Object.entries(obj);
            // A deterministic shuffle.
            for (let i = entries.length - 1; i > 0; i--) {
              const j = (seed * 31 + i * 17) % (i + 1);
              [entries[i], entries[j]] = [entries[j]!, entries[i]!];
            }
            const shuffled = Object.fromEntries(entries.reverse());
            expect(canonicalize(shuffled)).toBe(canonicalize(obj));
          },
        ),
        { numRuns: 300 },
      );
    });

    it('matches JSON.stringify for primitives it accepts', () => {
      fc.assert(
        fc.property(
          fc.oneof(fc.fullUnicodeString(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean()),
          (p) => {
            expect(canonicalize(p)).toBe(JSON.stringify(p));
          },
        ),
        { numRuns: 500 },
      );
    });

    it('is injective on distinct JSON values (different canonical forms for different values)', () => {
      fc.assert(
        fc.property(jsonValue, jsonValue, (a, b) => {
          const same = canonicalize(a) === canonicalize(b);
          expect(same).toBe(JSON.stringify(sortDeep(a)) === JSON.stringify(sortDeep(b)));
        }),
        { numRuns: 300 },
      );
    });
  });
});

/** A copy with object keys sorted by UTF-16 code units and -0 as 0: the value JCS denotes. */
function sortDeep(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortDeep);
  if (typeof v === 'number') return v === 0 ? 0 : v;
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, sortDeep((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
}
