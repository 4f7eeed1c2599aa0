/**
 * The committed form of an event, value by value (docs/ledger-spec.md §4, §5): which fields are
 * committed and in which order the salts are drawn, the normalized timestamp, the defaulted one,
 * and a leaf hash equal to the reference `leafHash(leafBytes(…))`. Salts come from a numbered
 * source so that every commitment is an exact, recomputable value.
 */
import { createSaltSource, prepareEvent, sealEvent } from '../../src/events/commit-form';
import type { EventInput } from '../../src/events/schema';
import { commitField, leafBytes, leafHash } from '../../src/ledger';

/** Salts 1, 2, 3, …: salt n is sixteen bytes of value n, so the n-th field drawn is known. */
function numberedSalts(): { next: () => Buffer; drawn: () => number } {
  let n = 0;
  return { next: () => Buffer.alloc(16, ++n), drawn: () => n };
}
const saltB64 = (n: number) => Buffer.alloc(16, n).toString('base64');
const commit = (n: number, value: unknown) => commitField(Buffer.alloc(16, n), value);

const ORG = '0190f1c2-0000-7000-8000-000000000001';
const ID = '0190f1c2-0000-7000-8000-0000000000aa';
const RECORDED_AT = new Date(Date.UTC(2026, 11, 6, 21, 5, 7, 89));
const RECORDED_AT_TEXT = '2026-12-06T21:05:07.089Z';

/** Every committed field, given out of schema order (the commit order must not follow it). */
const FULL = {
  idempotencyKey: 'key-1',
  details: { b: 2, a: [1, 'x'] },
  eventVersion: '1.0',
  retentionPolicy: 'seven-years',
  sessionContext: { sessionId: 's-1', ipAddress: '10.0.0.1' },
  correlationId: 'corr-1',
  dataClassification: 'PHI',
  outcomeDescription: 'read the chart',
  patientId: 'patient-1',
  targetResourceId: 'obs-1',
  targetResourceType: 'Observation',
  principalType: 'user',
  principalId: 'p-1',
  status: 'success',
  action: 'data.read',
  timestamp: '2026-12-01T10:00:00+01:00',
  producerSignature: { keyId: '0123456789abcdef', signature: 'c2ln' },
} as unknown as EventInput;

describe('prepareEvent', () => {
  it('commits every sent field in the ledger-spec order, one salt each, the timestamp as RFC 3339 UTC ms', () => {
    const salts = numberedSalts();
    const prepared = prepareEvent(FULL, salts.next);
    const order = [
      ['timestamp', '2026-12-01T09:00:00.000Z'],
      ['action', 'data.read'],
      ['status', 'success'],
      ['principalId', 'p-1'],
      ['principalType', 'user'],
      ['targetResourceType', 'Observation'],
      ['targetResourceId', 'obs-1'],
      ['patientId', 'patient-1'],
      ['outcomeDescription', 'read the chart'],
      ['dataClassification', 'PHI'],
      ['correlationId', 'corr-1'],
      ['sessionContext', { sessionId: 's-1', ipAddress: '10.0.0.1' }],
      ['retentionPolicy', 'seven-years'],
      ['eventVersion', '1.0'],
      ['details', { b: 2, a: [1, 'x'] }],
      ['idempotencyKey', 'key-1'],
    ] as const;
    expect(salts.drawn()).toBe(16);
    expect(Object.entries(prepared.values)).toEqual(order);
    expect(prepared.commitments).toEqual(Object.fromEntries(order.map(([f, v], i) => [f, commit(i + 1, v)])));
    expect(Object.keys(prepared.commitments)).toEqual(order.map(([f]) => f));
    expect(prepared.salts).toEqual(Object.fromEntries(order.map(([f], i) => [f, saltB64(i + 1)])));
    // Carried beside the event, never committed: the signature is over the committed form.
    expect(prepared.idempotencyKey).toBe('key-1');
    expect(prepared.producerSignature).toEqual({ keyId: '0123456789abcdef', signature: 'c2ln' });
    expect(Object.keys(prepared)).toEqual(['values', 'commitments', 'salts', 'idempotencyKey', 'producerSignature']);
  });

  it('skips absent fields without drawing a salt for them, and commits falsy values that are present', () => {
    const salts = numberedSalts();
    const prepared = prepareEvent({ action: 'a.b', status: 'attempt', details: { n: 0, f: false, z: '' } } as unknown as EventInput, salts.next);
    expect(salts.drawn()).toBe(3);
    expect(prepared).toEqual({
      values: { action: 'a.b', status: 'attempt', details: { n: 0, f: false, z: '' } },
      commitments: { action: commit(1, 'a.b'), status: commit(2, 'attempt'), details: commit(3, { n: 0, f: false, z: '' }) },
      salts: { action: saltB64(1), status: saltB64(2), details: saltB64(3) },
      idempotencyKey: undefined,
      producerSignature: undefined,
    });
  });

  it('commits an empty string value (present, not absent)', () => {
    const salts = numberedSalts();
    const prepared = prepareEvent({ action: 'a.b', status: 'success', principalId: '' } as unknown as EventInput, salts.next);
    expect(prepared.values).toEqual({ action: 'a.b', status: 'success', principalId: '' });
    expect(prepared.commitments.principalId).toBe(commit(3, ''));
  });

  it('normalizes only the timestamp: a text field holding a date string is committed as sent', () => {
    const salts = numberedSalts();
    const prepared = prepareEvent({ action: 'a.b', status: 'success', eventVersion: '2026-12-01T10:00:00+01:00' } as unknown as EventInput, salts.next);
    expect(prepared.values.eventVersion).toBe('2026-12-01T10:00:00+01:00');
  });

  it('throws the canonicalization error of a value the schema should have refused', () => {
    expect(() => prepareEvent({ action: 'a.b', status: 'success', details: { v: '\ud800' } } as unknown as EventInput, numberedSalts().next)).toThrow(TypeError);
  });
});

describe('sealEvent', () => {
  const reference = (commitments: Record<string, string>, recordedAt = RECORDED_AT_TEXT) =>
    leafHash(leafBytes({ org: ORG, id: ID, recordedAt, fields: commitments }));

  it('defaults the timestamp to recordedAt with the next salt, and hashes the leaf as the reference does', () => {
    const salts = numberedSalts();
    const prepared = prepareEvent({ action: 'a.b', status: 'success' } as EventInput, salts.next);
    const sealed = sealEvent(ORG, ID, RECORDED_AT, prepared, salts.next);
    expect(sealed.values).toEqual({ action: 'a.b', status: 'success', timestamp: RECORDED_AT_TEXT });
    expect(sealed.commitments).toEqual({ action: commit(1, 'a.b'), status: commit(2, 'success'), timestamp: commit(3, RECORDED_AT_TEXT) });
    expect(sealed.salts).toEqual({ action: saltB64(1), status: saltB64(2), timestamp: saltB64(3) });
    expect(sealed.leafHash.toString('hex')).toBe(reference(sealed.commitments).toString('hex'));
    // The prepared event is left as it was, so a batch can be sealed again on a retry.
    expect(prepared.values).toEqual({ action: 'a.b', status: 'success' });
    expect(Object.keys(prepared.commitments)).toEqual(['action', 'status']);
    expect(Object.keys(prepared.salts)).toEqual(['action', 'status']);
  });

  it('keeps a sent timestamp and draws no salt for it', () => {
    const salts = numberedSalts();
    const prepared = prepareEvent({ action: 'a.b', status: 'success', timestamp: '2026-01-02T03:04:05Z' } as EventInput, salts.next);
    const sealed = sealEvent(ORG, ID, RECORDED_AT, prepared, salts.next);
    expect(salts.drawn()).toBe(3);
    expect(sealed.values).toEqual({ timestamp: '2026-01-02T03:04:05.000Z', action: 'a.b', status: 'success' });
    expect(sealed.commitments).toBe(prepared.commitments);
    expect(sealed.salts).toBe(prepared.salts);
    expect(sealed.leafHash.equals(reference(prepared.commitments))).toBe(true);
  });

  it('uses the recordedAt text it is handed for the leaf and the defaulted timestamp', () => {
    const salts = numberedSalts();
    const prepared = prepareEvent({ action: 'a.b', status: 'success' } as EventInput, salts.next);
    const other = '2020-01-01T00:00:00.000Z';
    const sealed = sealEvent(ORG, ID, RECORDED_AT, prepared, salts.next, other);
    expect(sealed.values.timestamp).toBe(other);
    expect(sealed.leafHash.equals(reference(sealed.commitments, other))).toBe(true);
  });
});

describe('createSaltSource', () => {
  it('cuts sixteen-byte salts from one random buffer per chunk, and takes a new buffer when one is used up', () => {
    const next = createSaltSource(2);
    const [a, b, c, d, e] = [next(), next(), next(), next(), next()];
    for (const s of [a, b, c, d, e]) expect(s.length).toBe(16);
    // a and b are the two halves of the first chunk, c and d of the second.
    expect(b.buffer).toBe(a.buffer);
    expect(b.byteOffset).toBe(a.byteOffset + 16);
    expect(d.buffer).toBe(c.buffer);
    expect(d.byteOffset).toBe(c.byteOffset + 16);
    const insideFirstChunk = c.buffer === a.buffer && c.byteOffset >= a.byteOffset && c.byteOffset < a.byteOffset + 32;
    expect(insideFirstChunk).toBe(false);
    const hex = new Set([a, b, c, d, e].map((s) => s.toString('hex')));
    expect(hex.size).toBe(5);
  });

  it('draws 1024 salts per chunk by default', () => {
    const next = createSaltSource();
    const first = next();
    let last = first;
    for (let i = 1; i < 1024; i++) last = next();
    expect(last.buffer).toBe(first.buffer);
    expect(last.byteOffset).toBe(first.byteOffset + 16 * 1023);
    const fresh = next();
    expect(fresh.buffer === first.buffer && fresh.byteOffset < first.byteOffset + 16 * 1024).toBe(false);
  });
});
