/**
 * The event embedding (server/src/analytics/embedding.ts, docs/analytics.md): deterministic,
 * unit length, 64 coordinates, and similar behaviour lands closer than different behaviour.
 */
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import {
  EMBEDDING_DIMENSIONS,
  FEATURES,
  cosineDistance,
  embedEvent,
  eventFeatures,
  hash32,
  networkPrefix,
  parseVectorLiteral,
  timeParts,
  toVectorLiteral,
  userAgentFamily,
  type EmbeddingSource,
} from '../../src/analytics/embedding';

const CHROME = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36';

function event(overrides: Partial<EmbeddingSource> = {}): EmbeddingSource {
  return {
    timestamp: '2026-11-03T10:15:00.000Z', // a Tuesday morning
    recordedAt: new Date('2026-12-06T05:00:00.000Z'),
    action: 'data.read',
    status: 'success',
    principalType: 'user',
    targetResourceType: 'Patient',
    hasPatient: true,
    dataClassification: 'PHI',
    ipAddress: '10.20.30.40',
    userAgent: CHROME,
    ...overrides,
  };
}

const norm = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0));

const sourceArb: fc.Arbitrary<EmbeddingSource> = fc.record({
  timestamp: fc.option(fc.date({ min: new Date('0001-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true }).map((d) => d.toISOString()), { nil: null }),
  recordedAt: fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }),
  action: fc.option(fc.string(), { nil: null }),
  status: fc.option(fc.constantFrom('attempt', 'success', 'failure'), { nil: null }),
  principalType: fc.option(fc.string(), { nil: null }),
  targetResourceType: fc.option(fc.string(), { nil: null }),
  hasPatient: fc.boolean(),
  dataClassification: fc.option(fc.constantFrom('PUBLIC', 'INTERNAL', 'CONFIDENTIAL', 'PHI'), { nil: null }),
  ipAddress: fc.option(fc.oneof(fc.ipV4(), fc.ipV6()), { nil: null }),
  userAgent: fc.option(fc.string(), { nil: null }),
});

describe('event embedding', () => {
  it('is deterministic: the same event gives the same vector, pinned to known values', () => {
    const a = embedEvent(event());
    const b = embedEvent(event());
    expect(Array.from(a)).toEqual(Array.from(b));
    // Pinned to values computed by an independent (Python) implementation of docs/analytics.md: a
    // changed feature, weight or hash changes them, and needs a new EMBEDDING_VERSION.
    expect([hash32(''), hash32('a'), hash32('action=data.read')]).toEqual([2872998923, 444641715, 2905689601]);
    expect(Array.from(a.slice(0, 8)).map((x) => Number(x.toFixed(6)))).toEqual([0, -0.411345, 0, 0, 0, -0.246807, 0, 0]);
  });

  it('has 64 coordinates and unit L2 norm for any event (property)', () => {
    fc.assert(
      fc.property(sourceArb, (e) => {
        const v = embedEvent(e);
        expect(v).toHaveLength(EMBEDDING_DIMENSIONS);
        expect(Math.abs(norm(v) - 1)).toBeLessThan(1e-9);
        expect(Array.from(embedEvent(e))).toEqual(Array.from(v));
      }),
      { numRuns: 300 },
    );
  });

  it('round-trips through pgvector’s text form within float4 precision', () => {
    const v = embedEvent(event());
    const back = parseVectorLiteral(toVectorLiteral(v));
    expect(back).toHaveLength(EMBEDDING_DIMENSIONS);
    back.forEach((x, i) => expect(Math.abs(x - v[i]!)).toBeLessThan(1e-7));
  });

  it('puts the same behaviour at another minute closer than a night-time export from a new network with curl', () => {
    const base = embedEvent(event());
    const sameHabit = embedEvent(event({ timestamp: '2026-11-05T10:40:00.000Z', ipAddress: '10.20.30.99' }));
    const otherTarget = embedEvent(event({ targetResourceType: 'Observation' }));
    const anomaly = embedEvent(event({ timestamp: '2026-11-08T03:10:00.000Z', action: 'data.export', ipAddress: '203.0.113.7', userAgent: 'curl/8.5.0' }));
    expect(cosineDistance(base, sameHabit)).toBeLessThan(cosineDistance(base, otherTarget));
    expect(cosineDistance(base, otherTarget)).toBeLessThan(cosineDistance(base, anomaly));
    expect(cosineDistance(base, anomaly)).toBeGreaterThan(0.5);
  });

  it('reads the event time from timestamp, else recordedAt, in UTC', () => {
    expect(timeParts({ timestamp: '2026-11-08T03:10:00+02:00', recordedAt: new Date(0) })).toEqual({ weekday: 6, hour: 1 });
    expect(timeParts({ timestamp: null, recordedAt: new Date('2026-11-02T23:59:59Z') })).toEqual({ weekday: 0, hour: 23 });
  });

  it('never encodes identifiers: the tokens name groups and coarse values only', () => {
    const tokens = eventFeatures(event()).map((f) => f.token);
    expect(tokens).toContain('network=10.20');
    expect(tokens).toContain('subnet=10.20.30');
    expect(tokens).toContain('agent=chrome');
    expect(tokens).toContain('patient=yes');
    expect(tokens.join(' ')).not.toContain('10.20.30.40');
  });

  it('derives network prefixes and user-agent families', () => {
    expect(networkPrefix('2001:db8:85a3::8a2e:370:7334', 'wide')).toBe('2001:db8');
    expect(networkPrefix('2001:db8:85a3::8a2e:370:7334', 'narrow')).toBe('2001:db8:85a3');
    expect(networkPrefix('::1', 'narrow')).toBe('0:0:0');
    expect(networkPrefix(null, 'wide')).toBe('none');
    expect(userAgentFamily(CHROME)).toBe('chrome');
    expect(userAgentFamily('Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 Chrome/120.0 Safari/537.36 Edg/120.0')).toBe('edge');
    expect(userAgentFamily('python-requests/2.31')).toBe('python');
    expect(userAgentFamily('curl/8.5.0')).toBe('curl');
    expect(userAgentFamily(null)).toBe('none');
  });

  it('is documented: the feature table of docs/analytics.md equals FEATURES (name, weight, token)', () => {
    const page = fs.readFileSync(path.resolve(__dirname, '../../../docs/analytics.md'), 'utf8');
    const lines = page.slice(page.indexOf('| feature | weight | token |')).split('\n').slice(2);
    const rows = lines
      .slice(0, lines.findIndex((l) => !l.startsWith('|')))
      .map((l) => l.split('|').map((c) => c.trim()))
      .map((c) => ({ name: c[1]!.replace(/`/g, ''), weight: Number(c[2]), description: c[3] }));
    expect(rows).toEqual(FEATURES.map((f) => ({ name: f.name, weight: f.weight, description: f.description })));
  });
});
