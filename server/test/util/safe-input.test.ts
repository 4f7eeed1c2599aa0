/**
 * The shared input rules: safe text, storable instants and the iterative depth check, against
 * straightforward references (fast-check).
 */
import fc from 'fast-check';
import { instantSchema, isStorableInstant, jsonShapeIssue, safeText, unsafeTextReason } from '../../src/util/safe-input';

/** Recursive reference: the depth of a JSON value (a scalar is 0, a container 1 + its deepest child). */
function depthOf(v: unknown): number {
  if (v === null || typeof v !== 'object') return 0;
  const children = Array.isArray(v) ? v : Object.values(v);
  return 1 + Math.max(0, ...children.map(depthOf));
}

describe('unsafeTextReason', () => {
  it('accepts exactly the well-formed strings without NUL', () => {
    const withLone = fc
      .tuple(fc.string({ unit: 'binary' }), fc.integer({ min: 0xd800, max: 0xdfff }), fc.string({ unit: 'binary' }))
      .map(([a, s, b]) => a + String.fromCharCode(s) + b);
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), withLone, fc.string().map((s) => s + '\u0000')), (s) => {
        const expected = s.isWellFormed() && !s.includes('\u0000');
        expect(unsafeTextReason(s) === null).toBe(expected);
      }),
      { numRuns: 2000 },
    );
  });

  it('names the rule in its message', () => {
    expect(unsafeTextReason('\ud800')).toMatch(/lone surrogate/);
    expect(unsafeTextReason('a\u0000')).toMatch(/NUL/);
    expect(unsafeTextReason('😀 é')).toBeNull();
    expect(safeText(4).safeParse('\udc00').success).toBe(false);
    expect(safeText(4).safeParse('😀').success).toBe(true);
    // PGlite drops a leading byte-order mark of a text column when reading it back.
    expect(safeText(4).safeParse('\ufeffa').success).toBe(false);
    expect(safeText(4).safeParse('a\ufeff').success).toBe(true);
  });
});

describe('instants', () => {
  it('accepts 0001-01-01T00:00:00Z … 9999-12-31T23:59:59.999Z after offset normalization, nothing outside', () => {
    const s = instantSchema();
    for (const ok of ['0001-01-01T00:00:00Z', '0001-01-01T23:58:00+23:58', '9999-12-31T23:59:59.999Z', '9999-12-31T00:00:00-23:59', '2026-02-28T12:00:00.123456+01:00']) {
      expect({ ok, success: s.safeParse(ok).success }).toEqual({ ok, success: true });
    }
    for (const bad of ['0000-12-31T23:59:59Z', '0001-01-01T00:00:00+00:01', '0001-01-01T00:00:00+23:59', '9999-12-31T23:59:59-23:59', '9999-12-31T23:59:59.999-00:01', '2026-02-30T00:00:00Z']) {
      expect({ bad, success: s.safeParse(bad).success }).toEqual({ bad, success: false });
    }
  });

  it('agrees with the PostgreSQL/RFC 3339 range for every millisecond it is given', () => {
    fc.assert(
      fc.property(fc.integer({ min: -8.64e15, max: 8.64e15 }), (ms) => {
        const iso = new Date(ms).toISOString();
        expect(isStorableInstant(ms)).toBe(/^\d{4}-/.test(iso) && !iso.startsWith('0000'));
      }),
      { numRuns: 5000 },
    );
  });
});

describe('jsonShapeIssue', () => {
  it('finds exactly the values deeper than the limit (against a recursive reference)', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 12 }), fc.integer({ min: 1, max: 12 }), (v, limit) => {
        const issue = jsonShapeIssue(v, limit);
        expect(issue !== null).toBe(depthOf(v) > limit);
        if (issue) {
          // The path leads to a container at depth limit + 1.
          let at: unknown = v;
          for (const k of issue.path) at = (at as Record<string | number, unknown>)[k];
          expect(at !== null && typeof at === 'object').toBe(true);
          expect(issue.path).toHaveLength(limit);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('walks a million levels without exhausting the stack', () => {
    let v: unknown = 1;
    for (let i = 0; i < 1_000_000; i++) v = [v];
    const issue = jsonShapeIssue(v);
    expect(issue?.message).toBe('nesting deeper than 100 levels');
    expect(issue?.path).toHaveLength(100);
  });
});
