/**
 * The ingest fast paths are the reference computations of docs/ledger-spec.md §4–§5 done with less
 * copying: `commitFieldFast` must return what `commitField` returns (and throw where it throws),
 * and `prepareEvent` + `sealEvent` must produce commitments and a leaf hash that the reference
 * functions (`commitField`, `leafHash(leafBytes(…))`) reproduce from the stored salts and values.
 */
import fc from 'fast-check';
import { createSaltSource, prepareEvent, sealEvent } from '../../src/events/commit-form';
import type { EventInput } from '../../src/events/schema';
import { commitField, commitFieldFast, formatRecordedAt, leafBytes, leafHash, newSalt } from '../../src/ledger';

/** The result of `f`, or the class and message of what it threw. */
function outcome(f: () => string): { ok: string } | { threw: string } {
  try {
    return { ok: f() };
  } catch (err) {
    return { threw: `${(err as Error).constructor.name}: ${(err as Error).message}` };
  }
}

describe('commitFieldFast', () => {
  it('agrees with commitField on JSON values', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const salt = newSalt();
        expect(commitFieldFast(salt, value)).toBe(commitField(salt, value));
      }),
      { numRuns: 1000 },
    );
  });

  it('agrees with commitField on any string, lone surrogates included (both throw the same error)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' }), (binary, grapheme) => {
        const salt = newSalt();
        for (const value of [binary, grapheme, { k: binary }, [grapheme, binary]]) {
          expect(outcome(() => commitFieldFast(salt, value))).toEqual(outcome(() => commitField(salt, value)));
        }
      }),
      { numRuns: 500 },
    );
  });

  it('throws where commitField throws: non-JSON values and bad salts', () => {
    const salt = newSalt();
    class Box {
      v = 1;
    }
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    let deep: unknown = 1;
    for (let i = 0; i < 20_000; i++) deep = [deep];
    for (const value of [NaN, Infinity, undefined, 10n, new Date(0), new Box(), [undefined], cyclic, '\udc00x', { a: '\ud800' }]) {
      const fast = outcome(() => commitFieldFast(salt, value));
      expect('threw' in fast).toBe(true);
      expect(fast).toEqual(outcome(() => commitField(salt, value)));
    }
    // Deeper than the recursive fast path can go: the iterative reference answers.
    expect(commitFieldFast(salt, deep)).toBe(commitField(salt, deep));
    expect(outcome(() => commitFieldFast(Buffer.alloc(15), 'x'))).toEqual(outcome(() => commitField(Buffer.alloc(15), 'x')));
    // A value larger than the scratch buffer grows it.
    const big = 'é'.repeat(100_000);
    expect(commitFieldFast(salt, big)).toBe(commitField(salt, big));
    expect(commitFieldFast(salt, 'small after big')).toBe(commitField(salt, 'small after big'));
  });
});

describe('prepareEvent + sealEvent', () => {
  const field = fc.option(fc.string({ unit: 'grapheme', maxLength: 40 }), { nil: undefined });
  const input = fc.record(
    {
      action: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 }),
      status: fc.constantFrom('attempt', 'success', 'failure'),
      principalId: field,
      patientId: field,
      targetResourceId: field,
      timestamp: fc.option(
        fc.date({ min: new Date(0), max: new Date(Date.UTC(9999, 0)), noInvalidDate: true }).map((d) => d.toISOString()),
        { nil: undefined },
      ),
      details: fc.option(fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 4 }), { nil: undefined }),
      sessionContext: fc.option(fc.record({ ipAddress: fc.ipV4(), userAgent: fc.string({ unit: 'grapheme', maxLength: 30 }) }), { nil: undefined }),
    },
    { requiredKeys: ['action', 'status'] },
  );

  it('builds what the reference functions rebuild from the stored salts and values', () => {
    const salt = createSaltSource(7);
    fc.assert(
      fc.property(
        input,
        fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }),
        fc.uuid(),
        fc.date({ min: new Date(0), max: new Date(Date.UTC(9999, 0)), noInvalidDate: true }),
        (raw, org, id, recordedAt) => {
          const prepared = prepareEvent(raw as EventInput, salt);
          const sealed = sealEvent(org, id, recordedAt, prepared, salt);
          expect(Object.keys(sealed.commitments).sort()).toEqual(Object.keys(sealed.values).sort());
          for (const [name, value] of Object.entries(sealed.values)) {
            expect(sealed.commitments[name]).toBe(commitField(Buffer.from(sealed.salts[name]!, 'base64'), value));
          }
          const leaf = leafBytes({ org, id, recordedAt: formatRecordedAt(recordedAt), fields: sealed.commitments });
          expect(sealed.leafHash.equals(leafHash(leaf))).toBe(true);
          // The precomputed recordedAt text gives the same leaf.
          const again = sealEvent(org, id, recordedAt, prepared, salt, formatRecordedAt(recordedAt));
          expect(again.leafHash.equals(leafHash(leafBytes({ org, id, recordedAt: formatRecordedAt(recordedAt), fields: again.commitments })))).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });
});
