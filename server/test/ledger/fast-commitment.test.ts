/**
 * The ingest fast paths are the reference computations of docs/ledger-spec.md §4–§5 done with less
 * copying: `commitFieldFast` must return what `commitField` returns (and throw where it throws),
 * and `prepareEvent` + `sealEvent` must produce commitments and a leaf hash that the reference
 * functions (`commitField`, `leafHash(leafBytes(…))`) reproduce from the stored salts and values.
 */
import fc from 'fast-check';
import { createSaltSource, prepareEvent, sealEvent } from '../../src/events/commit-form';
import type { EventInput } from '../../src/events/schema';
import {
  commitField,
  commitFieldFast,
  committedFieldStatus,
  formatRecordedAt,
  leafBytes,
  leafHash,
  newSalt,
  rebuildLeafHash,
  verifyCommittedField,
  type CommittedField,
} from '../../src/ledger';

/** The result of `f`, or the class and message of what it threw. */
function outcome(f: () => string): { ok: string } | { threw: string } {
  try {
    return { ok: f() };
  } catch (err) {
    return { threw: `${(err as Error).constructor.name}: ${(err as Error).message}` };
  }
}

// These two run first in this file, on the module as this file loaded it: its scratch buffer is then
// 64 KiB (or what the first test grew it to), and each value needs more than twice the buffer it
// meets, run alone or in order, so a buffer grown by doubling instead of to the need would be too
// small. No reloading of the module: code run at a module's load inside a test would be counted as
// covered by that test alone, and Stryker would judge the module's constants by it.
describe('the scratch buffer, grown past twice its size', () => {
  it('grows to what commitFieldFast needs', () => {
    const salt = newSalt();
    const big = '☃'.repeat(100_000); // needs 16 + 3 × 100,002 = 300,022 bytes: more than twice 64 KiB
    expect(commitFieldFast(salt, big)).toBe(commitField(salt, big));
  });

  it('grows to what committedFieldStatus needs', () => {
    const salt = newSalt();
    const big = '☃'.repeat(400_000); // needs 1,200,022 bytes: more than twice the 300,022 of the test above
    expect(committedFieldStatus({ commitment: commitField(salt, big), salt: salt.toString('base64'), value: big })).toBe('ok');
  });
});

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
    for (const value of [NaN, Infinity, undefined, 10n, new Date(0), new Box(), [undefined], cyclic, '\udc00x', { a: '\ud800' }, { '\ud800': 1 }]) {
      const fast = outcome(() => commitFieldFast(salt, value));
      expect('threw' in fast).toBe(true);
      expect(fast).toEqual(outcome(() => commitField(salt, value)));
    }
    // Deeper than the recursive fast path can go: the iterative reference answers.
    expect(commitFieldFast(salt, deep)).toBe(commitField(salt, deep));
    expect(outcome(() => commitFieldFast(Buffer.alloc(15), 'x'))).toEqual(outcome(() => commitField(Buffer.alloc(15), 'x')));
    // A large value, then a small one from the buffer it left.
    const big = 'é'.repeat(100_000);
    expect(commitFieldFast(salt, big)).toBe(commitField(salt, big));
    expect(commitFieldFast(salt, 'small after big')).toBe(commitField(salt, 'small after big'));
  });
});

describe('committedFieldStatus', () => {
  const salt = Buffer.alloc(16, 9);
  const SALT = salt.toString('base64');

  it.each<[string, Partial<CommittedField> & Record<string, unknown>, string]>([
    ['an erased field whose value member is left undefined', { salt: null, value: undefined }, 'erased'],
    ['an erased field that kept its value', { salt: null, value: 'x' }, 'mismatch'],
    ['a field whose value is undefined', { value: undefined }, 'mismatch'],
    ['a commitment that is not a string', { commitment: 7 as never }, 'mismatch'],
    ['a salt that is a number', { salt: 16 as never }, 'mismatch'],
    ['a salt in an array (its string form is the right salt)', { salt: [SALT] as never }, 'mismatch'],
    ['a salt in non-canonical base64 of the same bytes', { salt: SALT.replace(/.==$/, (m) => String.fromCharCode(m.charCodeAt(0) + 1) + '==') }, 'mismatch'],
    // Node's base64 decoder skips white space: these decode to the right salt, but are not its canonical form.
    ['a salt with a space in front', { salt: ` ${SALT}` }, 'mismatch'],
    ['a salt with a line break after it', { salt: `${SALT}\n` }, 'mismatch'],
    ['a salt in base64url', { salt: Buffer.alloc(16, 0xfb).toString('base64url') + '==', commitment: commitField(Buffer.alloc(16, 0xfb), 'x') }, 'mismatch'],
    ['the right salt and value', {}, 'ok'],
  ])('judges %s as verifyCommittedField does', (_name, change, verdict) => {
    const f = { commitment: commitField(salt, 'x'), salt: SALT, value: 'x', ...change } as CommittedField;
    expect(committedFieldStatus(f)).toBe(verdict);
    expect(verifyCommittedField(f)).toBe(verdict);
  });

  it('hashes a large value, then small ones again, from the buffer the large one grew', () => {
    const big = '☃'.repeat(400_000);
    const s = newSalt();
    expect(committedFieldStatus({ commitment: commitField(s, big), salt: s.toString('base64'), value: big })).toBe('ok');
    expect(committedFieldStatus({ commitment: commitField(s, 'small'), salt: s.toString('base64'), value: 'small' })).toBe('ok');
    expect(committedFieldStatus({ commitment: commitField(s, big.slice(1)), salt: s.toString('base64'), value: big })).toBe('mismatch');
  });
});

describe('rebuildLeafHash', () => {
  const recordedAt = '2026-12-06T15:00:00.000Z';
  const hex = '09af'.repeat(16);
  const outcomeOf = (f: () => Buffer): { ok: string } | { threw: string } => outcome(() => f().toString('hex'));
  const reference = (org: unknown, id: unknown, at: unknown, fields: Record<string, unknown>) =>
    outcomeOf(() => leafHash(leafBytes({ org, id, recordedAt: at, fields } as never)));

  it.each<[string, unknown, unknown, unknown, Record<string, unknown>]>([
    ['an upper-case commitment', 'org', 'id', recordedAt, { a: 'A'.repeat(64) }],
    ['a commitment with "g"', 'org', 'id', recordedAt, { a: 'g'.repeat(64) }],
    ['a commitment with "z"', 'org', 'id', recordedAt, { a: 'z'.repeat(64) }],
    ['a commitment with "`" (before "a")', 'org', 'id', recordedAt, { a: '`'.repeat(64) }],
    ['a commitment with "/" (before "0")', 'org', 'id', recordedAt, { a: '/'.repeat(64) }],
    ['a commitment with ":" (after "9")', 'org', 'id', recordedAt, { a: ':'.repeat(64) }],
    ['a commitment with one bad digit at the end', 'org', 'id', recordedAt, { a: hex.slice(0, 63) + 'G' }],
    ['a commitment of 65 digits', 'org', 'id', recordedAt, { a: hex + '0' }],
    ['a commitment of 63 digits', 'org', 'id', recordedAt, { a: hex.slice(1) }],
    ['a commitment that is a number', 'org', 'id', recordedAt, { a: 5 }],
    ['one bad commitment among good ones', 'org', 'id', recordedAt, { a: hex, b: hex.toUpperCase(), c: hex }],
    ['an org with a lone surrogate', '\ud800', 'id', recordedAt, { a: hex }],
    ['an id with a lone surrogate', 'org', '\udc00', recordedAt, { a: hex }],
    ['an org and id with lone surrogates and no fields', '\ud800', '\udc00', recordedAt, {}],
    ['an org that is not a string', 5, 'id', recordedAt, { a: hex }],
    ['a recordedAt without milliseconds', 'org', 'id', '2026-12-06T15:00:00Z', { a: hex }],
    ['a field name with a lone surrogate', 'org', 'id', recordedAt, { a: hex, '\ud800': hex }],
  ])('throws what the reference throws for %s', (_name, org, id, at, fields) => {
    const expected = reference(org, id, at, fields);
    expect(expected).toHaveProperty('threw');
    expect(outcomeOf(() => rebuildLeafHash(org as string, id as string, at as string, fields as Record<string, string>))).toEqual(expected);
  });

  it.each<[string, string, string, Record<string, string>]>([
    ['commitments of every hex digit', 'org', 'id', { a: hex, b: 'f'.repeat(64), c: '0'.repeat(64), d: '9'.repeat(64) }],
    ['no fields', 'org', 'id', {}],
    ['surrogate pairs in org, id and field names', 'org 😀', 'id 😀', { '😀': hex }],
    ['quotes and escapes in org, id and field names', 'o"\\', 'i\n\u0001', { 'n"\u007f': hex }],
  ])('agrees with the reference on %s', (_name, org, id, fields) => {
    const expected = reference(org, id, recordedAt, fields);
    expect(expected).toHaveProperty('ok');
    expect(outcomeOf(() => rebuildLeafHash(org, id, recordedAt, fields))).toEqual(expected);
    expect(outcomeOf(() => rebuildLeafHash(org, id, recordedAt, fields, true))).toEqual(expected);
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
