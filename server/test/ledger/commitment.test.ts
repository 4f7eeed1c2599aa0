/**
 * Field commitments, recordedAt formatting and leaf bytes (docs/ledger-spec.md §4, §5).
 */
import { createHash } from 'node:crypto';

import fc from 'fast-check';

import {
  SALT_SIZE,
  commitField,
  decodeBase64Strict,
  formatRecordedAt,
  isRecordedAt,
  leafBytes,
  leafHash,
  newSalt,
  verifyCommittedField,
} from '../../src/ledger';
import type { CommittedField, LeafContent } from '../../src/ledger';

const salt = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');

describe('commitField', () => {
  it('is lower-case hex SHA-256(salt || UTF-8(JCS(value)))', () => {
    const value = { b: [1, 'é'], a: null };
    const expected = createHash('sha256')
      .update(Buffer.concat([salt, Buffer.from('{"a":null,"b":[1,"é"]}', 'utf8')]))
      .digest('hex');
    expect(commitField(salt, value)).toBe(expected);
    expect(commitField(salt, value)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('pins a known value (salt 00..0f, value "login")', () => {
    // Computed outside Node: python3 -c 'import hashlib; print(hashlib.sha256(bytes(range(16)) + b"\"login\"").hexdigest())'
    expect(commitField(salt, 'login')).toBe(
      '0f8a25c290309550ff83197c4bc313b4a1886213c77c995955d8cbf150044caf',
    );
  });

  it('does not depend on key order, but on every value and the salt', () => {
    expect(commitField(salt, { a: 1, b: 2 })).toBe(commitField(salt, { b: 2, a: 1 }));
    expect(commitField(salt, { a: 1, b: 2 })).not.toBe(commitField(salt, { a: 1, b: 3 }));
    expect(commitField(salt, 'x')).not.toBe(commitField(Buffer.alloc(16), 'x'));
    expect(commitField(salt, 1)).not.toBe(commitField(salt, '1'));
  });

  it('requires a 16-byte salt', () => {
    expect(() => commitField(Buffer.alloc(15), 'x')).toThrow(RangeError);
    expect(() => commitField(Buffer.alloc(17), 'x')).toThrow(RangeError);
    expect(() => commitField(new Uint8Array(0), 'x')).toThrow(RangeError);
  });

  it('rejects values that are not JSON', () => {
    expect(() => commitField(salt, { d: new Date() })).toThrow(TypeError);
    expect(() => commitField(salt, undefined)).toThrow(TypeError);
  });
});

describe('newSalt', () => {
  it('returns 16 fresh random bytes', () => {
    const a = newSalt();
    const b = newSalt();
    expect(a).toHaveLength(SALT_SIZE);
    expect(a.equals(b)).toBe(false);
  });
});

describe('formatRecordedAt', () => {
  it('is RFC 3339 UTC with exactly millisecond precision and Z', () => {
    expect(formatRecordedAt(new Date(Date.UTC(2026, 10, 27, 13, 48, 11, 123)))).toBe(
      '2026-11-27T13:48:11.123Z',
    );
    expect(formatRecordedAt(new Date(Date.UTC(2026, 0, 1, 0, 0, 0, 0)))).toBe('2026-01-01T00:00:00.000Z');
    expect(formatRecordedAt(new Date('2026-06-30T23:59:59.9+02:00'))).toBe('2026-06-30T21:59:59.900Z');
  });

  it('rejects invalid dates and years RFC 3339 cannot write', () => {
    expect(() => formatRecordedAt(new Date(NaN))).toThrow(RangeError);
    expect(() => formatRecordedAt(new Date(Date.UTC(10000, 0, 1)))).toThrow(RangeError);
    expect(() => formatRecordedAt(new Date(Date.UTC(-1, 0, 1)))).toThrow(RangeError);
  });
});

describe('recordedAt form and messages', () => {
  it('isRecordedAt accepts exactly the millisecond Z form, and only strings', () => {
    expect(isRecordedAt('2026-11-27T13:48:11.123Z')).toBe(true);
    expect(isRecordedAt('2026-11-27T13:48:11Z')).toBe(false);
    expect(isRecordedAt('2026-11-27T13:48:11.123+00:00')).toBe(false);
    // The whole string, not a part of it: nothing before the year, nothing after the Z.
    expect(isRecordedAt(' 2026-11-27T13:48:11.123Z')).toBe(false);
    expect(isRecordedAt('2026-11-27T13:48:11.123Z ')).toBe(false);
    expect(isRecordedAt('2026-11-27T13:48:11.123Z\n')).toBe(false);
    expect(isRecordedAt(new String('2026-11-27T13:48:11.123Z'))).toBe(false);
    expect(isRecordedAt(undefined)).toBe(false);
  });

  it('formatRecordedAt says why it refuses', () => {
    expect(() => formatRecordedAt(new Date(NaN))).toThrow(/^recordedAt: invalid date$/);
    expect(() => formatRecordedAt(new Date(Date.UTC(10000, 0, 1)))).toThrow(
      /^recordedAt: year out of RFC 3339 range: \+010000-01-01T00:00:00\.000Z$/,
    );
  });
});

describe('decodeBase64Strict', () => {
  it('decodes canonical padded base64 and refuses anything else, including non-strings', () => {
    expect(decodeBase64Strict('QQ==')).toEqual(Buffer.from('A'));
    expect(decodeBase64Strict('')).toEqual(Buffer.alloc(0));
    // Well-formed characters and padding, but non-zero trailing bits: not the canonical encoding.
    expect(decodeBase64Strict('QR==')).toBeNull();
    expect(decodeBase64Strict(123 as unknown as string)).toBeNull();
    expect(decodeBase64Strict(null as unknown as string)).toBeNull();
  });
});

describe('leafBytes', () => {
  const content: LeafContent = {
    org: 'org-1',
    id: '0193a7b2-7c1e-7000-8000-000000000001',
    recordedAt: '2026-11-27T13:48:11.123Z',
    fields: { status: 'b'.repeat(64), action: 'a'.repeat(64) },
  };

  it('is UTF-8 JCS of {v:1, org, id, recordedAt, fields}', () => {
    expect(leafBytes(content).toString('utf8')).toBe(
      '{"fields":{"action":"' +
        'a'.repeat(64) +
        '","status":"' +
        'b'.repeat(64) +
        '"},"id":"0193a7b2-7c1e-7000-8000-000000000001","org":"org-1","recordedAt":"2026-11-27T13:48:11.123Z","v":1}',
    );
  });

  it('hashes to a stable leaf hash (pinned, computed outside Node with Python hashlib)', () => {
    expect(leafHash(leafBytes(content)).toString('hex')).toBe(
      'ee6485e9055b510f090949627211ca4b1ab8e9ce4dbd92c0b8d0c7d0f5dd0433',
    );
  });

  it('encodes non-ASCII ids as UTF-8', () => {
    const bytes = leafBytes({ ...content, org: 'ørg', fields: {} });
    expect(bytes.includes(Buffer.from('"org":"ørg"', 'utf8'))).toBe(true);
  });

  it.each<[string, Partial<LeafContent>]>([
    ['recordedAt without milliseconds', { recordedAt: '2026-11-27T13:48:11Z' }],
    ['recordedAt with an offset', { recordedAt: '2026-11-27T13:48:11.123+00:00' }],
    ['recordedAt with microseconds', { recordedAt: '2026-11-27T13:48:11.123456Z' }],
    ['an upper-case commitment', { fields: { a: 'A'.repeat(64) } }],
    ['a short commitment', { fields: { a: 'a'.repeat(63) } }],
    ['a non-string org', { org: 1 as unknown as string }],
  ])('rejects %s', (_name, patch) => {
    expect(() => leafBytes({ ...content, ...patch })).toThrow(TypeError);
  });

  it.each<[string, Partial<LeafContent>, RegExp]>([
    ['a non-string id', { id: 7 as unknown as string }, /^leaf: org and id must be strings$/],
    [
      'a boxed recordedAt',
      { recordedAt: new String('2026-11-27T13:48:11.123Z') as unknown as string },
      /^leaf: recordedAt must be RFC 3339 UTC with milliseconds and Z, got 2026-11-27T13:48:11\.123Z$/,
    ],
    ['fields = null', { fields: null as unknown as Record<string, string> }, /^leaf: fields must be an object of commitments$/],
    ['fields as an array', { fields: ['a'.repeat(64)] as unknown as Record<string, string> }, /^leaf: fields must be an object of commitments$/],
    ['fields as a string', { fields: 'x' as unknown as Record<string, string> }, /^leaf: fields must be an object of commitments$/],
    ['fields as a number', { fields: 5 as unknown as Record<string, string> }, /^leaf: fields must be an object of commitments$/],
    [
      'a commitment that is an array of one hex string',
      { fields: { a: ['a'.repeat(64)] as unknown as string } },
      /^leaf: fields\["a"\] must be 64 lower-case hex digits$/,
    ],
  ])('rejects %s with a TypeError naming the member', (_name, patch, message) => {
    expect(() => leafBytes({ ...content, ...patch })).toThrow(TypeError);
    expect(() => leafBytes({ ...content, ...patch })).toThrow(message);
  });
});

describe('verifyCommittedField', () => {
  const value = { ip: '10.0.0.1', tags: ['a'] };
  const s = newSalt();
  const ok: CommittedField = { commitment: commitField(s, value), salt: s.toString('base64'), value };

  it('accepts a field whose salt and value reproduce the commitment', () => {
    expect(verifyCommittedField(ok)).toBe('ok');
    expect(verifyCommittedField({ ...ok, value: { tags: ['a'], ip: '10.0.0.1' } })).toBe('ok');
  });

  it('reports an erased field (no salt, no value) as erased', () => {
    expect(verifyCommittedField({ commitment: ok.commitment, salt: null })).toBe('erased');
    // A `value: undefined` member is no value (JSON has no undefined): still erased.
    expect(verifyCommittedField({ commitment: ok.commitment, salt: null, value: undefined })).toBe('erased');
  });

  it.each<[string, CommittedField]>([
    ['a changed value', { ...ok, value: { ip: '10.0.0.2', tags: ['a'] } }],
    ['a changed salt', { ...ok, salt: Buffer.alloc(16).toString('base64') }],
    ['a changed commitment', { ...ok, commitment: 'f'.repeat(64) }],
    ['a malformed commitment', { ...ok, commitment: ok.commitment.toUpperCase() }],
    ['a salt of the wrong length', { ...ok, salt: Buffer.alloc(15).toString('base64') }],
    ['a salt that is not base64', { ...ok, salt: '!!!!' + ok.salt!.slice(4) }],
    ['a salt without its value', { commitment: ok.commitment, salt: ok.salt }],
    ['a value without its salt', { commitment: ok.commitment, salt: null, value }],
  ])('reports %s as a mismatch', (_name, field) => {
    expect(verifyCommittedField(field)).toBe('mismatch');
  });

  it('round-trips any JSON value (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.uint8Array({ minLength: 16, maxLength: 16 }), (v, saltBytes) => {
        const field: CommittedField = {
          commitment: commitField(saltBytes, v),
          salt: Buffer.from(saltBytes).toString('base64'),
          value: JSON.parse(JSON.stringify(v)),
        };
        expect(verifyCommittedField(field)).toBe('ok');
      }),
      { numRuns: 200 },
    );
  });
});
