/**
 * fast-check arbitraries for hostile API input: Unicode edge cases (lone surrogates, NUL, emoji,
 * bidi controls, noncharacters), boundary dates (years 0000/0001/9999/10000, ±23:59 offsets),
 * numbers at the edges of JSON and int8, forged cursors and ids, deep and wide structures, and
 * valid events built from the well-behaved parts of the same alphabet.
 */
import fc from 'fast-check';

/** Strings that have broken parsers, drivers or canonicalizers somewhere. */
export const EDGE_STRINGS = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\ud800',
  '\udfff',
  'x\ud83d',
  '\ude00y',
  '\ud83d\ude00',
  '\u202e\u2066',
  '\ufeff',
  '\uffff',
  '\u2028\u2029',
  'e\u0301',
  '\u0001\u001f\u007f',
  '__proto__',
  'constructor',
  "' OR 1=1 --",
  '%00',
  '%',
  '../..',
  'a'.repeat(5000),
  '😀'.repeat(3000),
];

/** A lone surrogate code unit somewhere in a string. */
const withLoneSurrogate = fc
  .tuple(fc.string({ maxLength: 5 }), fc.integer({ min: 0xd800, max: 0xdfff }), fc.string({ maxLength: 5 }))
  .map(([a, s, b]) => a + String.fromCharCode(s) + b);

/** Any string, biased towards the edge cases. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...EDGE_STRINGS) },
  { weight: 2, arbitrary: withLoneSurrogate },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 300 }) },
);

/** RFC 3339 strings at and around the storable range, with extreme offsets. */
export const boundaryDate: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    '0000-01-01T00:00:00Z',
    '0001-01-01T00:00:00Z',
    '0001-01-01T00:00:00+23:59',
    '0001-01-01T23:59:00+23:59',
    '9999-12-31T23:59:59.999Z',
    '9999-12-31T23:59:59-23:59',
    '9999-12-31T00:00:00-23:59',
    '+010000-01-01T00:00:00Z',
    '2026-02-29T00:00:00Z',
    '2024-02-29T24:00:00Z',
    '2026-13-01T00:00:00Z',
    '2026-01-01T00:00:60Z',
    '2026-01-01',
    '2026-01-01T00:00:00.123456789Z',
  ),
  fc
    .tuple(fc.integer({ min: -62_200_000_000_000, max: 253_410_000_000_000 }), fc.integer({ min: -23, max: 23 }), fc.integer({ min: 0, max: 59 }))
    .map(([ms, h, m]) => {
      const iso = new Date(ms).toISOString();
      if (!/^\d{4}-/.test(iso)) return iso;
      const sign = h < 0 ? '-' : '+';
      return `${iso.slice(0, 19)}${sign}${String(Math.abs(h)).padStart(2, '0')}:${String(m).padStart(2, '0')}`;
    }),
);

/** Numbers at the edges of JSON, doubles and PostgreSQL int8. */
export const edgeNumber: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(0, -0, -1, 1, 2 ** 31, 2 ** 53 - 1, 2 ** 53 + 2, -(2 ** 63), 1e21, 1e308, -1e308, 5e-324, 0.1, 1.5),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);

/** `levels` nested objects or arrays. */
export function nest(levels: number, array: boolean): unknown {
  let v: unknown = array ? [1] : { a: 1 };
  for (let i = 1; i < levels; i++) v = array ? [v] : { a: v };
  return v;
}

/** Deep (up to 3,000 levels) or wide (up to 3,000 keys) structures. */
export const bigStructure: fc.Arbitrary<unknown> = fc.oneof(
  fc.tuple(fc.integer({ min: 2, max: 3000 }), fc.boolean()).map(([n, a]) => nest(n, a)),
  fc.integer({ min: 100, max: 3000 }).map((n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]))),
  fc.integer({ min: 100, max: 3000 }).map((n) => Array.from({ length: n }, (_, i) => `v${i}`)),
);

/** Any JSON-ish value an attacker can send. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: hostileString },
  { weight: 2, arbitrary: boundaryDate },
  { weight: 2, arbitrary: edgeNumber },
  { weight: 1, arbitrary: fc.constantFrom(true, false, null) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.array(hostileString, { maxLength: 5 }) },
  { weight: 1, arbitrary: fc.dictionary(hostileString, hostileString, { maxKeys: 4 }) },
  { weight: 1, arbitrary: bigStructure },
);

/** Query-string values: hostile strings, numbers as text, long lists, ids and forged cursors. */
export const hostileParam: fc.Arbitrary<string> = fc.oneof(
  hostileString,
  boundaryDate,
  edgeNumber.map(String),
  fc.constantFrom('-1', '0', '1e3', '9007199254740993', 'NaN', ' 5 ', '0x10', 'true', 'false', 'TRUE', 'yes', ''),
  fc.integer({ min: 0, max: 6000 }).map((n) => ','.repeat(n)),
  fc.array(fc.constantFrom('success', 'failure', 'PHI', 'x', '', '\u0000'), { maxLength: 150 }).map((a) => a.join(',')),
  fc.constantFrom('ffffffff-ffff-7fff-bfff-ffffffffffff', '00000000-0000-0000-0000-000000000000', '01900000-0000-7000-8000-000000000000', 'not-a-uuid'),
  fc.uuid(),
  fc.tuple(boundaryDate, fc.oneof(fc.uuid(), hostileString)).map(([at, id]) => Buffer.from(JSON.stringify([at, id])).toString('base64url')),
  fc.jsonValue({ maxDepth: 2 }).map((v) => Buffer.from(JSON.stringify(v)).toString('base64url')),
);

/**
 * A percent-encoded query value. Lone surrogates have no UTF-8 form, so they are sent as the
 * CESU-style bytes a hostile client would send; sometimes raw malformed escapes are sent as well.
 */
export function encodeParam(value: string): string {
  return [...value]
    .map((ch) => {
      const c = ch.charCodeAt(0);
      if (ch.length === 1 && c >= 0xd800 && c <= 0xdfff) {
        return [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)].map((b) => `%${b.toString(16).toUpperCase()}`).join('');
      }
      return encodeURIComponent(ch);
    })
    .join('');
}

/** Raw (already encoded) query fragments that are malformed on purpose. */
export const rawQueryFragment = fc.constantFrom('%', '%zz', '%FF', '%ED%A0%80', '%C0%80', '%F0%9F%98', '%00', '%E2%80%AE');

// --- valid events --------------------------------------------------------------------------

/** Characters that are valid everywhere text is stored: no NUL, no lone surrogate. */
const safeChar = fc.oneof(
  { weight: 6, arbitrary: fc.char() },
  { weight: 2, arbitrary: fc.constantFrom('😀', '\u202e', '\ufeff', '\uffff', 'e\u0301', '\u2028', '\u0001', '\u007f', 'ß', '中', '\u{10ffff}') },
);
const anyText = (min: number, max: number) => fc.string({ unit: safeChar, minLength: min, maxLength: max });
/** Text for a text column: a leading U+FEFF is refused there (see util/safe-input.ts). */
const safeString = (min: number, max: number) => anyText(min, max).filter((s) => !s.startsWith('\ufeff'));
const segment = fc.stringMatching(/^[A-Za-z0-9_-]{1,8}$/);

/** A valid action (`data.read`). */
export const validAction = fc
  .tuple(fc.stringMatching(/^[A-Za-z][A-Za-z0-9_-]{0,8}$/), fc.array(segment, { minLength: 1, maxLength: 3 }))
  .map(([head, rest]) => [head, ...rest].join('.'));

/** A timestamp inside the storable range, in UTC or with an offset that keeps it inside. */
export const validTimestamp = fc
  .tuple(fc.integer({ min: -62_135_510_400_000, max: 253_402_214_400_000 }), fc.integer({ min: -12, max: 12 }))
  .map(([ms, h]) => {
    const local = new Date(ms + h * 3_600_000).toISOString().slice(0, 23);
    return h === 0 ? `${local}Z` : `${local}${h < 0 ? '-' : '+'}${String(Math.abs(h)).padStart(2, '0')}:00`;
  });

const detailsKey = anyText(1, 12).filter((k) => k !== '__proto__');
const detailsLeaf = fc.oneof(anyText(0, 40), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer(), fc.boolean(), fc.constant(null));
const { value: detailsValue } = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    // details itself is depth 1: at most 6 levels stay within EVENT_MAX_DEPTH (8).
    { depthSize: 'small', maxDepth: 5, withCrossShrink: true },
    detailsLeaf,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(detailsKey, tie('value'), { maxKeys: 4 }),
  ),
}));

/** An event the server must accept (default limits). */
export const validEvent: fc.Arbitrary<Record<string, unknown>> = fc.record(
  {
    timestamp: validTimestamp,
    action: validAction,
    status: fc.constantFrom('attempt', 'success', 'failure'),
    principalId: safeString(1, 40),
    principalType: safeString(1, 20),
    targetResourceType: safeString(1, 40),
    targetResourceId: safeString(1, 40),
    patientId: safeString(1, 40),
    outcomeDescription: safeString(1, 200),
    dataClassification: fc.constantFrom('PUBLIC', 'INTERNAL', 'CONFIDENTIAL', 'PHI'),
    correlationId: safeString(1, 40),
    sessionContext: fc.record(
      { sessionId: safeString(1, 30), ipAddress: fc.oneof(fc.ipV4(), fc.ipV6()), userAgent: safeString(1, 60), geolocation: safeString(1, 30) },
      { requiredKeys: [] },
    ),
    retentionPolicy: safeString(1, 20),
    eventVersion: safeString(1, 10),
    details: fc.dictionary(detailsKey, detailsValue, { maxKeys: 6 }),
    idempotencyKey: fc.stringMatching(/^[\x21-\x7e]{1,40}$/),
  },
  { requiredKeys: ['action', 'status'] },
);

/** One change that makes any event invalid, with the field path the 400 must name (a prefix). */
/** A poisoning change. */
export interface Poison {
  apply: (e: Record<string, unknown>) => Record<string, unknown>;
  path: string;
}

export const poison: fc.Arbitrary<Poison> = fc.oneof(
  fc.constantFrom('0000-01-01T00:00:00Z', '0001-01-01T00:00:00+23:59', '9999-12-31T23:59:59-23:59', '2026-02-30T00:00:00Z').map((t): Poison => ({ apply: (e) => ({ ...e, timestamp: t }), path: 'timestamp' })),
  fc
    .tuple(fc.constantFrom('principalId', 'patientId', 'targetResourceId', 'correlationId', 'outcomeDescription'), fc.constantFrom('\ud800', 'a\u0000', 'x\udfffy'))
    .map(([f, v]): Poison => ({ apply: (e) => ({ ...e, [f]: v }), path: f })),
  fc.constantFrom('\ud800', '\u0000', '__proto__').map((k): Poison => ({ apply: (e) => ({ ...e, details: JSON.parse(`{${JSON.stringify(k)}:1}`) as unknown }), path: 'details' })),
  fc.constantFrom('x\ud800', 'y\u0000').map((v): Poison => ({ apply: (e) => ({ ...e, details: { v } }), path: 'details.v' })),
  fc.integer({ min: 9, max: 3000 }).map((n): Poison => ({ apply: (e) => ({ ...e, details: { d: nest(n, n % 2 === 0) } }), path: 'details.d' })),
  fc.constant({ apply: (e: Record<string, unknown>) => ({ ...e, status: 'maybe' }), path: 'status' }),
  fc.constant({ apply: (e: Record<string, unknown>) => ({ ...e, organizationId: '00000000-0000-4000-8000-000000000000' }), path: 'organizationId' }),
  fc.constant({ apply: (e: Record<string, unknown>) => ({ ...e, patientId: 'p'.repeat(5000) }), path: 'patientId' }),
  fc.constant({ apply: (e: Record<string, unknown>) => ({ ...e, sessionContext: { userAgent: '\ud83d' } }), path: 'sessionContext.userAgent' }),
);
