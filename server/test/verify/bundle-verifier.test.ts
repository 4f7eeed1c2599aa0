/**
 * The pure bundle verifier on bundles built in memory with the ledger functions: what verifies,
 * and for each way a bundle can be wrong, the failure it reports and where. The fast paths of the
 * hot loop are checked against the reference implementations on random input.
 */
import { generateKeyPairSync } from 'node:crypto';

import fc from 'fast-check';
import {
  BUNDLE_FORMAT,
  BundleVerifier,
  appendLeaves,
  commitField,
  committedFieldStatus,
  formatRecordedAt,
  frontierNodes,
  generateSignerKey,
  leafBytes,
  leafHash,
  newSalt,
  parseSignerKey,
  parseVerifierKey,
  planConsistency,
  producerKeyId,
  proveConsistency,
  rebuildLeafHash,
  signCheckpoint,
  signProducerEvent,
  verifyCommittedField,
  verifyProducerSignature,
  type BundleRecord,
  type BundleReport,
  type CommittedField,
} from '../../src/ledger';
import { committedEvent } from './committed-event';

const ORG = '0190c0de-0000-4000-8000-000000000001';
const ORIGIN = `test.audit/${ORG}`;
const key = generateSignerKey('test.audit');
const signer = parseSignerKey(key.signerKey);
const verifiers = [parseVerifierKey(key.verifierKey)];

/** A log of `n` events with checkpoints at `sizes`, exported as [start, end) like the server does. */
function buildBundle(n: number, sizes: number[], start = 0): BundleRecord[] {
  const nodes = new Map<string, Buffer>();
  const events: BundleRecord[] = [];
  let size = 0;
  let frontier: Buffer[] = [];
  const roots = new Map<number, Buffer>();
  for (let i = 0; i < n; i++) {
    const values: Record<string, unknown> = { action: 'data.read', status: i % 3 ? 'success' : 'failure', principalId: `u-${i}`, details: { i, s: 'é☃' } };
    const id = `0190c0de-0000-7000-8000-${String(i).padStart(12, '0')}`;
    const recordedAt = formatRecordedAt(new Date(Date.UTC(2026, 10, 27, 12, 0, 0, i)));
    const { fields, leafHash: h } = committedEvent(ORG, id, recordedAt, values);
    const appended = appendLeaves(size, frontier, [h]);
    for (const nd of appended.nodes) nodes.set(`${nd.level}/${nd.index}`, nd.hash);
    size = appended.size;
    frontier = appended.frontier;
    roots.set(size, appended.root);
    if (i >= start) events.push({ type: 'event', leafIndex: i, id, recordedAt, leafHash: h.toString('base64'), fields });
  }
  const read = (ids: Array<{ level: number; index: number }>) => ids.map((x) => nodes.get(`${x.level}/${x.index}`)!);
  const cp = (s: number): BundleRecord => ({ type: 'checkpoint', treeSize: s, note: signCheckpoint({ origin: ORIGIN, size: s, rootHash: roots.get(s)! }, [signer]), createdAt: '2026-11-27T12:00:00.000Z' });
  const out: BundleRecord[] = [
    { type: 'header', format: BUNDLE_FORMAT, origin: ORIGIN, organizationId: ORG, start, end: n, headSize: n, exportedAt: '2026-11-27T12:00:00.000Z' },
    { type: 'key', keyId: signer.keyId.toString('hex'), name: signer.name, verifierKey: key.verifierKey, notBefore: '2026-01-01T00:00:00.000Z', notAfter: null },
  ];
  let prev: number | null = null;
  if (start > 0) {
    out.push({ type: 'frontier', size: start, hashes: read(frontierNodes(start)).map((x) => x.toString('base64')) }, cp(start));
    prev = start;
  }
  for (const e of events) {
    const idx = (e as { leafIndex: number }).leafIndex;
    for (const s of sizes.filter((x) => x === idx && x > start)) {
      if (prev !== null) out.push({ type: 'consistency', fromSize: prev, toSize: s, hashes: proveConsistency(prev, s, read(planConsistency(prev, s))).map((x) => x.toString('base64')) });
      out.push(cp(s));
      prev = s;
    }
    out.push(e);
  }
  if (prev !== null && prev !== n) out.push({ type: 'consistency', fromSize: prev, toSize: n, hashes: proveConsistency(prev, n, read(planConsistency(prev, n))).map((x) => x.toString('base64')) });
  out.push(cp(n));
  const checkpoints = out.filter((r) => r.type === 'checkpoint').length;
  out.push({ type: 'end', events: events.length, checkpoints });
  return out;
}

function run(records: unknown[], opts: Partial<ConstructorParameters<typeof BundleVerifier>[0]> = {}): BundleReport {
  const v = new BundleVerifier({ verifiers, ...opts });
  for (const r of records) v.push(r);
  return v.finish();
}

const clone = <T>(x: T): T => structuredClone(x);
const eventAt = (b: BundleRecord[], i: number) => b.find((r) => r.type === 'event' && r.leafIndex === i) as Extract<BundleRecord, { type: 'event' }>;

describe('BundleVerifier', () => {
  const good = buildBundle(13, [3, 8]);

  it('verifies a correct bundle: every field, leaf, checkpoint and consistency proof', () => {
    const r = run(good);
    expect(r.failures).toEqual([]);
    expect(r).toMatchObject({ ok: true, events: 13, fieldsVerified: 13 * 4, erasedFields: 0, checkpointsVerified: 3, consistencyProofsVerified: 2 });
    expect(r.latest?.treeSize).toBe(13);
  });

  it('verifies a range that starts at a checkpoint, anchored by the frontier', () => {
    const r = run(buildBundle(13, [3, 8], 8));
    expect(r.failures).toEqual([]);
    expect(r.events).toBe(5);
    expect(r.checkpointsVerified).toBe(2);
  });

  it('reports an erased field as erased, and a half-erased one as a failure', () => {
    const b = clone(good);
    const f = eventAt(b, 4).fields.principalId!;
    f.salt = null;
    delete f.value;
    expect(run(b)).toMatchObject({ ok: true, erasedFields: 1, erased: [{ leafIndex: 4, field: 'principalId' }] });
    const half = clone(good);
    eventAt(half, 4).fields.principalId!.salt = null; // value left behind
    expect(run(half).failures[0]).toMatchObject({ kind: 'leaf', leafIndex: 4 });
  });

  it('names the leaf whose value no longer matches its commitment', () => {
    const b = clone(good);
    eventAt(b, 6).fields.action!.value = 'data.delete';
    const r = run(b);
    expect(r.ok).toBe(false);
    expect(r.failures[0]).toMatchObject({ kind: 'leaf', leafIndex: 6, reason: 'leaf 6: field action does not match its commitment' });
  });

  it('names the leaf whose commitment was replaced (the leaf no longer matches the log, the root no longer the checkpoint)', () => {
    const b = clone(good);
    const salt = newSalt();
    const f = eventAt(b, 5).fields.action!;
    f.value = 'data.delete';
    f.salt = salt.toString('base64');
    f.commitment = commitField(salt, 'data.delete');
    const r = run(b);
    expect(r.failures[0]).toMatchObject({ kind: 'leaf', leafIndex: 5 });
    expect(r.failures[0]!.reason).toMatch(/differs from the log's leaf/);
    expect(r.failures[1]).toMatchObject({ kind: 'checkpoint', treeSize: 8 });
    expect(r.failures[1]!.reason).toMatch(/first altered leaf is in \[3, 8\)/);
  });

  it('names a missing leaf and a duplicated one', () => {
    const missing = good.filter((r) => !(r.type === 'event' && r.leafIndex === 9));
    expect(run(missing).failures[0]).toMatchObject({ kind: 'leaf', leafIndex: 9 });
    const dup = clone(good);
    dup.splice(dup.indexOf(eventAt(dup, 9)) + 1, 0, clone(eventAt(dup, 9)));
    expect(run(dup).failures[0]).toMatchObject({ kind: 'leaf', leafIndex: 9, reason: 'leaf 9 appears twice (a second event claims its position)' });
  });

  it('rejects a checkpoint signed by an unknown key, with a bad signature or for another log', () => {
    const other = generateSignerKey('test.audit');
    expect(run(good, { verifiers: [parseVerifierKey(other.verifierKey)] }).failures[0]).toMatchObject({ kind: 'checkpoint', treeSize: 3 });
    const bad = clone(good);
    const c = bad.find((r) => r.type === 'checkpoint' && r.treeSize === 8) as { note: string };
    c.note = c.note.replace(/\n8\n/, '\n9\n');
    expect(run(bad).failures[0]).toMatchObject({ kind: 'checkpoint', treeSize: 8 });
  });

  it('names the checkpoint whose consistency proof is missing or wrong', () => {
    const noProof = good.filter((r) => !(r.type === 'consistency' && r.toSize === 8));
    expect(run(noProof).failures[0]).toMatchObject({ kind: 'checkpoint', treeSize: 8, reason: 'no consistency proof from checkpoint 3 to 8' });
    const wrong = clone(good);
    const p = wrong.find((r) => r.type === 'consistency' && r.toSize === 13) as { hashes: string[] };
    p.hashes[0] = Buffer.alloc(32, 1).toString('base64');
    expect(run(wrong).failures[0]).toMatchObject({ kind: 'checkpoint', treeSize: 13 });
  });

  it('detects truncation, wrong end counts, a head past the latest checkpoint and junk lines', () => {
    expect(run(good.slice(0, -1)).failures.map((f) => f.reason)).toContain('bundle is truncated (no end record)');
    const cut = good.slice(0, good.length - 5);
    expect(run(cut).ok).toBe(false);
    const counts = clone(good);
    (counts.at(-1) as { events: number }).events = 12;
    expect(run(counts).failures[0]!.reason).toMatch(/end record counts 12 events/);
    const head = clone(good);
    (head[0] as { headSize: number }).headSize = 14;
    expect(run(head).failures[0]!.reason).toMatch(/unsigned leaves were appended/);
    const v = new BundleVerifier({ verifiers });
    good.forEach((r, i) => (i === 3 ? v.pushUnparsable('Unexpected token') : v.push(r)));
    expect(v.finish().failures[0]).toMatchObject({ kind: 'bundle', line: 4 });
    expect(run([{ type: 'event' }]).failures[0]!.reason).toMatch(/first line must be the header/);
  });

  it('fails a pinned checkpoint whose root differs at its size, passes the genuine one', () => {
    const note = (good.find((r) => r.type === 'checkpoint' && r.treeSize === 8) as { note: string }).note;
    const text = note.slice(0, note.indexOf('\n\n') + 1);
    const [, size, root] = text.split('\n');
    const pinned = { origin: ORIGIN, size: Number(size), rootHash: Buffer.from(root!, 'base64') };
    expect(run(good, { pinned }).ok).toBe(true);
    expect(run(good, { pinned: { ...pinned, rootHash: Buffer.alloc(32) } }).failures[0]).toMatchObject({ kind: 'checkpoint', treeSize: 8 });
  });
});

describe('hot-path equivalence with the reference code', () => {
  it('committedFieldStatus agrees with verifyCommittedField', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.boolean(), fc.boolean(), (value, tamper, erase) => {
        const salt = newSalt();
        const f: CommittedField = { commitment: commitField(salt, value), salt: salt.toString('base64'), value };
        if (tamper) f.commitment = f.commitment.replace(/^./, (c) => (c === '0' ? '1' : '0'));
        if (erase) f.salt = null;
        expect(committedFieldStatus(f)).toBe(verifyCommittedField(f));
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (value) => {
        const salt = newSalt();
        const good = { commitment: commitField(salt, value), salt: salt.toString('base64'), value };
        expect(committedFieldStatus(good)).toBe('ok');
      }),
      { numRuns: 300 },
    );
    const salt = newSalt();
    const loneSurrogate = { commitment: '0'.repeat(64), salt: salt.toString('base64'), value: '\uD800' };
    expect(committedFieldStatus(loneSurrogate)).toBe('mismatch');
    expect(committedFieldStatus({ commitment: '0'.repeat(64), salt: 'AAAAAAAAAAAAAAAAAAAAAB==', value: 1 })).toBe('mismatch'); // non-canonical base64
  });

  it('rebuildLeafHash agrees with leafHash(leafBytes(…))', () => {
    const hex = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex'));
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme' }),
        fc.string({ unit: 'grapheme' }),
        fc.date({ min: new Date(0), max: new Date(Date.UTC(9999, 0)), noInvalidDate: true }),
        fc.dictionary(fc.string({ unit: 'grapheme' }), hex),
        (org, id, at, fields) => {
          const recordedAt = formatRecordedAt(at);
          const reference = leafHash(leafBytes({ org, id, recordedAt, fields }));
          expect(rebuildLeafHash(org, id, recordedAt, fields).equals(reference)).toBe(true);
          expect(rebuildLeafHash(org, id, recordedAt, fields, true).equals(reference)).toBe(true); // commitments known to be hex
        },
      ),
      { numRuns: 500 },
    );
    // Commitments that are not 64 lower-case hex: the fast path must not hash them, the reference throws.
    const notHex = fc.oneof(hex, fc.string(), hex.map((h) => h.toUpperCase()), hex.map((h) => h.slice(1)));
    fc.assert(
      fc.property(fc.string(), fc.dictionary(fc.string(), notHex, { minKeys: 1 }), (id, fields) => {
        const recordedAt = '2026-12-06T15:00:00.000Z';
        let reference: Buffer | Error;
        try {
          reference = leafHash(leafBytes({ org: 'org', id, recordedAt, fields }));
        } catch (err) {
          reference = err as Error;
        }
        if (reference instanceof Error) expect(() => rebuildLeafHash('org', id, recordedAt, fields)).toThrow(reference.message);
        else expect(rebuildLeafHash('org', id, recordedAt, fields).equals(reference)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

describe('producer signatures (the check behind producerSignature in a bundle)', () => {
  const pair = generateKeyPairSync('ed25519');
  const seed = pair.privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(-32);
  const pub = pair.publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const event = { id: 'e1', action: 'login', actor: { id: 'u1' } };
  const { keyId, signature } = signProducerEvent(event, seed, pub);

  it('signs and verifies, and a key id is the first 8 bytes of SHA-256 of the key', () => {
    expect(keyId).toBe(producerKeyId(pub));
    expect(keyId).toMatch(/^[0-9a-f]{16}$/);
    expect(verifyProducerSignature({ ...event, producerSignature: { keyId, signature } }, signature, pub)).toBe(true);
    expect(verifyProducerSignature({ ...event, action: 'logout' }, signature, pub)).toBe(false);
  });

  it('refuses keys and seeds that are not 32 bytes', () => {
    expect(() => producerKeyId(pub.subarray(0, 31))).toThrow(RangeError);
    expect(() => signProducerEvent(event, seed.subarray(0, 31), pub)).toThrow(RangeError);
  });

  it('reports false, never throws, for a malformed signature or key or an event that is not JSON', () => {
    expect(verifyProducerSignature(event, 'not base64!', pub)).toBe(false);
    expect(verifyProducerSignature(event, signature, pub.subarray(0, 31))).toBe(false);
    expect(verifyProducerSignature(event, Buffer.from(signature, 'base64').subarray(0, 63).toString('base64'), pub)).toBe(false);
    expect(verifyProducerSignature({ ...event, n: 10n }, signature, pub)).toBe(false);
  });
});
