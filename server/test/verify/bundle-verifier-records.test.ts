/**
 * The bundle verifier record by record, on bundles built in memory with the ledger's own functions:
 * every malformed line, every failure reason, pinned checkpoints, key windows, producer signatures
 * and the listing caps. Each case asserts the whole report (every failure with its kind, position,
 * line and wording; the counts; the warnings; the latest checkpoint), so a verifier that reports
 * another problem, or the right problem at the wrong place, fails. No server, no database: these
 * run once per mutant in the mutation run (docs/mutation-testing.md).
 */
import { generateKeyPairSync } from 'node:crypto';

import {
  BUNDLE_FORMAT,
  BundleVerifier,
  EMPTY_ROOT,
  checkEvent,
  appendLeaves,
  commitField,
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
  readProducerKey,
  signCheckpoint,
  signProducerEvent,
  verifyBundle,
  verifyConsistency,
  type BundleCheckpoint,
  type BundleConsistency,
  type BundleEvent,
  type BundleFailure,
  type BundleFrontier,
  type BundleHeader,
  type BundleKey,
  type BundleProducerKey,
  type BundleRecord,
  type BundleReport,
  type BundleVerifierOptions,
  type CheckedEvent,
  type Checkpoint,
  type ProducerKeyEntry,
  type Signer,
} from '../../src/ledger';
import { committedEvent } from './committed-event';

const ORG = '0190c0de-0000-4000-8000-0000000000b1';
const ORIGIN = `test.audit/${ORG}`;
const OTHER_ORIGIN = 'test.audit/0190c0de-0000-4000-8000-0000000000b2';
const STORED_AT = '2026-11-27T12:00:00.000Z';

const logKey = generateSignerKey('test.audit');
const signer = parseSignerKey(logKey.signerKey);
const verifiers = [parseVerifierKey(logKey.verifierKey)];
const KEY_ID = signer.keyId.toString('hex');
const otherKey = generateSignerKey('test.audit');
const otherSigner = parseSignerKey(otherKey.signerKey);

const keyRecord = (over: Partial<BundleKey> = {}): BundleKey => ({
  type: 'key',
  keyId: KEY_ID,
  name: signer.name,
  verifierKey: logKey.verifierKey,
  notBefore: '2026-01-01T00:00:00.000Z',
  notAfter: null,
  ...over,
});

const producerPair = generateKeyPairSync('ed25519');
const producerSeed = producerPair.privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(-32);
const producerPub = producerPair.publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
const PRODUCER = producerKeyId(producerPub);

const producerKeyRecord = (over: Partial<BundleProducerKey> = {}): BundleProducerKey => ({
  type: 'producerKey',
  keyId: PRODUCER,
  name: 'billing',
  publicKey: producerPub.toString('base64'),
  createdAt: '2026-01-01T00:00:00.000Z',
  revokedAt: null,
  ...over,
});

const b64 = (b: Buffer) => b.toString('base64');

/** A log of events, its tree and its signed checkpoints; `bundle` exports a range of it as the server does. */
class Log {
  readonly events: BundleEvent[] = [];
  readonly leaves: Buffer[] = [];
  private readonly nodes = new Map<string, Buffer>();
  private readonly roots = new Map<number, Buffer>([[0, EMPTY_ROOT]]);
  private frontier: Buffer[] = [];

  constructor(n: number, signed: (i: number) => boolean = () => false) {
    for (let i = 0; i < n; i++) this.add(signed(i));
  }

  private add(signed: boolean): void {
    const i = this.events.length;
    const values: Record<string, unknown> = {
      action: 'data.read',
      status: i % 2 ? 'success' : 'failure',
      principalId: `u-${i}`,
      details: { i, note: 'é☃' },
    };
    const id = `0190c0de-0000-7000-8000-${String(i).padStart(12, '0')}`;
    const recordedAt = formatRecordedAt(new Date(Date.UTC(2026, 10, 27, 12, 0, i)));
    const { fields, leafHash: h } = committedEvent(ORG, id, recordedAt, values);
    const appended = appendLeaves(this.leaves.length, this.frontier, [h]);
    for (const nd of appended.nodes) this.nodes.set(`${nd.level}/${nd.index}`, nd.hash);
    this.frontier = appended.frontier;
    this.roots.set(appended.size, appended.root);
    this.leaves.push(h);
    const e: BundleEvent = { type: 'event', leafIndex: i, id, recordedAt, leafHash: b64(h), fields };
    if (signed) e.producerSignature = signProducerEvent(values, producerSeed, producerPub);
    this.events.push(e);
  }

  root(size: number): Buffer {
    return this.roots.get(size)!;
  }

  private read(ids: Array<{ level: number; index: number }>): Buffer[] {
    return ids.map((x) => this.nodes.get(`${x.level}/${x.index}`)!);
  }

  checkpoint(size: number, o: { signers?: Signer[]; origin?: string } = {}): BundleCheckpoint {
    const note = signCheckpoint({ origin: o.origin ?? ORIGIN, size, rootHash: this.root(size) }, o.signers ?? [signer]);
    return { type: 'checkpoint', treeSize: size, note, createdAt: STORED_AT };
  }

  consistency(from: number, to: number): BundleConsistency {
    return { type: 'consistency', fromSize: from, toSize: to, hashes: proveConsistency(from, to, this.read(planConsistency(from, to))).map(b64) };
  }

  frontierRecord(size: number): BundleFrontier {
    return { type: 'frontier', size, hashes: this.read(frontierNodes(size)).map(b64) };
  }

  /** Records [start, end) with a signed checkpoint before each event whose index is in `checkpoints`, and those ≥ end after them. */
  bundle(o: { start?: number; end: number; checkpoints: number[]; headSize?: number; keys?: BundleRecord[] }): BundleRecord[] {
    const { start = 0, end, checkpoints } = o;
    const header: BundleHeader = {
      type: 'header',
      format: BUNDLE_FORMAT,
      origin: ORIGIN,
      organizationId: ORG,
      start,
      end,
      headSize: o.headSize ?? Math.max(end, ...checkpoints),
      exportedAt: '2026-11-28T00:00:00.000Z',
    };
    const out: BundleRecord[] = [header, ...(o.keys ?? [keyRecord()])];
    let prev: number | null = null;
    const signed = (s: number) => {
      if (prev !== null) out.push(this.consistency(prev, s));
      out.push(this.checkpoint(s));
      prev = s;
    };
    if (start > 0) {
      out.push(this.frontierRecord(start), this.checkpoint(start));
      prev = start;
    }
    for (let i = start; i < end; i++) {
      if (i > start && checkpoints.includes(i)) signed(i);
      out.push(this.events[i]!);
    }
    for (const s of checkpoints.filter((x) => x >= end && x > start).sort((a, b) => a - b)) signed(s);
    out.push({ type: 'end', events: end - start, checkpoints: out.filter((r) => r.type === 'checkpoint').length });
    return structuredClone(out);
  }
}

/** The RFC 9162 root of these leaf hashes, after an optional frontier of `size` leaves. */
function rootOf(leaves: Buffer[], size = 0, frontier: Buffer[] = []): Buffer {
  return appendLeaves(size, frontier, leaves).root;
}

function run(records: unknown[], opts: Partial<BundleVerifierOptions> = {}): BundleReport {
  const v = new BundleVerifier({ verifiers, ...opts });
  for (const r of records) v.push(r);
  return v.finish();
}

/** 1-based line of a record in a bundle. */
const at = (b: unknown[], r: unknown) => {
  const i = b.indexOf(r);
  if (i < 0) throw new Error('record not in the bundle');
  return i + 1;
};
const ev = (b: unknown[], i: number) => b.find((r) => (r as BundleRecord).type === 'event' && (r as BundleEvent).leafIndex === i) as BundleEvent;
const cpAt = (b: unknown[], s: number) => b.find((r) => (r as BundleRecord).type === 'checkpoint' && (r as BundleCheckpoint).treeSize === s) as BundleCheckpoint;
const consTo = (b: unknown[], s: number) => b.find((r) => (r as BundleRecord).type === 'consistency' && (r as BundleConsistency).toSize === s) as BundleConsistency;
const endOf = (b: unknown[]) => b.at(-1) as { type: 'end'; events: number; checkpoints: number };
const headerOf = (b: unknown[]) => b[0] as BundleHeader;
/** The bundle with `items` inserted just before `target` (or after it). */
const insert = (b: unknown[], target: unknown, items: unknown[], after = false) => {
  const i = b.indexOf(target) + (after ? 1 : 0);
  return [...b.slice(0, i), ...items, ...b.slice(i)];
};
const without = (b: unknown[], ...items: unknown[]) => b.filter((r) => !items.includes(r));

// A log of 14 events; the main bundle is [0, 13) with checkpoints 3, 8 and 13 (lines: header 1,
// key 2, events 0–2 on 3–5, checkpoint 3 on 6, events 3–7 on 7–11, proof 3→8 12, checkpoint 8 13,
// events 8–12 on 14–18, proof 8→13 19, checkpoint 13 20, end 21).
const log = new Log(14);
const good = log.bundle({ end: 13, checkpoints: [3, 8, 13] });
const latestOf = (b: unknown[], size: number) => ({ treeSize: size, rootHash: b64(log.root(size)), note: cpAt(b, size).note });

const GOOD: BundleReport = {
  ok: true,
  origin: ORIGIN,
  organizationId: ORG,
  start: 0,
  end: 13,
  events: 13,
  fieldsVerified: 52,
  erasedFields: 0,
  erased: [],
  checkpointsVerified: 3,
  consistencyProofsVerified: 2,
  producerSignaturesVerified: 0,
  producerSignaturesUnverifiable: 0,
  latest: latestOf(good, 13),
  failures: [],
  failureCount: 0,
  warnings: [],
};

/** The report expected: `base` with `over` applied; ok and failureCount follow the failures unless given. */
function expected(over: Partial<BundleReport>, base: BundleReport = GOOD): BundleReport {
  const failures = over.failures ?? [];
  return { ...base, ok: failures.length === 0, failureCount: failures.length, ...over, failures };
}

/** The report of a bundle without a (valid) header. */
const NO_HEADER: BundleReport = {
  ...GOOD,
  origin: null,
  organizationId: null,
  start: null,
  end: null,
  events: 0,
  fieldsVerified: 0,
  checkpointsVerified: 0,
  consistencyProofsVerified: 0,
  latest: null,
};

describe('BundleVerifier: the stream of lines', () => {
  it('needs at least one trusted key', () => {
    expect(() => new BundleVerifier({ verifiers: [] })).toThrow(new RangeError('BundleVerifier needs at least one trusted key'));
  });

  it('reports everything a correct bundle holds', () => {
    const v = new BundleVerifier({ verifiers });
    for (const r of good) v.push(r);
    expect(v.failuresSoFar).toBe(0);
    expect(v.finish()).toEqual(GOOD);
  });

  it('verifyBundle reads an async stream of records to the same report', async () => {
    async function* lines() {
      for (const r of good) yield r;
    }
    await expect(verifyBundle(lines(), { verifiers })).resolves.toEqual(GOOD);
  });

  it('hands every complete node to onNode, and lets an error of its own through', () => {
    const seen: string[] = [];
    run(good, { onNode: (level, index, hash) => seen.push(`${level}/${index}/${b64(hash)}`) });
    const nodes = appendLeaves(0, [], log.leaves.slice(0, 13)).nodes.map((n) => `${n.level}/${n.index}/${b64(n.hash)}`);
    expect(seen.sort()).toEqual(nodes.sort());
    const v = new BundleVerifier({ verifiers, onNode: () => { throw new Error('node store is gone'); } });
    v.push(good[0]);
    v.push(good[1]);
    expect(() => v.push(good[2])).toThrow('node store is gone');
  });

  it('records a line that is not JSON with its line number, and goes on', () => {
    const v = new BundleVerifier({ verifiers });
    v.push(good[0]);
    v.pushUnparsable('Unexpected end of JSON input');
    expect(v.failuresSoFar).toBe(1);
    for (const r of good.slice(1)) v.push(r);
    expect(v.finish()).toEqual(expected({ failures: [{ kind: 'bundle', line: 2, reason: 'line is not JSON: Unexpected end of JSON input' }] }));
  });

  it('refuses lines that are not JSON objects', () => {
    const b = insert(good, good[1], [5, null, ['header'], 'header']);
    const reason = 'malformed record: a bundle line must be a JSON object';
    expect(run(b)).toEqual(expected({ failures: [2, 3, 4, 5].map((line) => ({ kind: 'bundle' as const, line, reason })) }));
  });

  it('needs the header first', () => {
    const b = [good[1], ...good];
    expect(run(b)).toEqual(expected({ failures: [{ kind: 'bundle', line: 1, reason: 'malformed record: the first line must be the header' }] }));
  });

  it('refuses a record of unknown type', () => {
    const b = insert(good, good[1], [{ type: 'witness' }, { kind: 'event' }]);
    expect(run(b)).toEqual(
      expected({
        failures: [
          { kind: 'bundle', line: 2, reason: 'malformed record: unknown record type "witness"' },
          { kind: 'bundle', line: 3, reason: 'malformed record: unknown record type undefined' },
        ],
      }),
    );
  });

  it('refuses data after the end record', () => {
    const b = [...good, structuredClone(ev(good, 12)), 7];
    expect(run(b)).toEqual(
      expected({
        failures: [
          { kind: 'bundle', line: 22, reason: 'data after the end record' },
          { kind: 'bundle', line: 23, reason: 'malformed record: a bundle line must be a JSON object' },
        ],
      }),
    );
  });

  it('reports an empty bundle, and one without a header', () => {
    expect(run([])).toEqual(expected({ failures: [{ kind: 'bundle', line: 0, reason: 'empty bundle (no header)' }] }, NO_HEADER));
    expect(run([3])).toEqual(
      expected(
        {
          failures: [
            { kind: 'bundle', line: 1, reason: 'malformed record: a bundle line must be a JSON object' },
            { kind: 'bundle', line: 1, reason: 'empty bundle (no header)' },
          ],
        },
        NO_HEADER,
      ),
    );
  });
});

describe('BundleVerifier: the header', () => {
  const header = good[0] as BundleHeader;
  it.each<[string, Partial<Record<keyof BundleHeader, unknown>>]>([
    ['unsupported format "smedrec-audit-bundle/2"', { format: 'smedrec-audit-bundle/2' }],
    ['unsupported format undefined', { format: undefined }],
    ['header.origin must be a non-empty string', { origin: '' }],
    ['header.origin must be a non-empty string', { origin: 7 }],
    ['header.organizationId must be a non-empty string', { organizationId: '' }],
    ['header.organizationId must be a non-empty string', { organizationId: null }],
    ['header.start must be a non-negative integer', { start: -1 }],
    ['header.start must be a non-negative integer', { start: 1.5 }],
    ['header.start must be a non-negative integer', { start: '0' }],
    ['header.start must be a non-negative integer', { start: 2 ** 53 }],
    ['header.end must be a non-negative integer', { end: -1 }],
    ['header.headSize must be a non-negative integer', { headSize: undefined }],
    ['header.end is before header.start', { start: 5, end: 4 }],
  ])('refuses a header: %s', (message, change) => {
    expect(run([{ ...header, ...change }])).toEqual(
      expected(
        {
          failures: [
            { kind: 'bundle', line: 1, reason: `malformed record: ${message}` },
            { kind: 'bundle', line: 1, reason: 'empty bundle (no header)' },
          ],
        },
        NO_HEADER,
      ),
    );
  });

  it('refuses a second header', () => {
    const b = insert(good, good[1], [structuredClone(header)]);
    expect(run(b)).toEqual(expected({ failures: [{ kind: 'bundle', line: 2, reason: 'malformed record: a second header' }] }));
  });

  it('accepts an empty range (start = end) with nothing to check', () => {
    const b = [{ ...header, start: 0, end: 0, headSize: 0 }, { type: 'end', events: 0, checkpoints: 0 }];
    expect(run(b)).toEqual(expected({ end: 0, events: 0, fieldsVerified: 0, checkpointsVerified: 0, consistencyProofsVerified: 0, latest: null }));
  });
});

describe('BundleVerifier: keys and producer keys', () => {
  it('refuses a checkpoint key without a verifier key', () => {
    const b = insert(good, good[1], [keyRecord({ verifierKey: '' })], true);
    expect(run(b)).toEqual(expected({ failures: [{ kind: 'bundle', line: 3, reason: 'malformed record: key.verifierKey must be a non-empty string' }] }));
  });

  it.each<[string, Partial<Record<keyof BundleProducerKey, unknown>>]>([
    ['producerKey.publicKey must be base64 of 32 bytes', { publicKey: 5 }],
    ['producerKey.publicKey must be base64 of 32 bytes', { publicKey: 'not base64!' }],
    ['producerKey.publicKey must be base64 of 32 bytes', { publicKey: producerPub.subarray(0, 31).toString('base64') }],
    ['producer key id 0011223344556677 does not match its public key', { keyId: '0011223344556677' }],
    ['producer key id undefined does not match its public key', { keyId: undefined }],
  ])('refuses a producer key: %s', (message, change) => {
    const b = insert(good, good[1], [{ ...producerKeyRecord(), ...change }], true);
    expect(run(b)).toEqual(expected({ failures: [{ kind: 'bundle', line: 3, reason: `malformed record: ${message}` }] }));
  });
});

describe('BundleVerifier: the frontier of a range that starts past 0', () => {
  // [8, 13): header 1, key 2, frontier 3, checkpoint 8 4, events 8–12 on 5–9, proof 10, checkpoint 13 11, end 12.
  const ranged = log.bundle({ start: 8, end: 13, checkpoints: [8, 13] });
  const RANGED = expected({ start: 8, events: 5, fieldsVerified: 20, checkpointsVerified: 2, consistencyProofsVerified: 1, latest: latestOf(ranged, 13) });
  const frontier = ranged[2] as BundleFrontier;

  it('verifies the range, anchored by the frontier', () => {
    expect(run(ranged)).toEqual(RANGED);
  });

  /** What follows a frontier the verifier refused: nothing of the range can be checked. */
  const refused = (reason: string): BundleReport =>
    expected(
      {
        events: 0,
        fieldsVerified: 0,
        failures: [
          { kind: 'bundle', line: 3, reason: `malformed record: ${reason}` },
          { kind: 'checkpoint', treeSize: 8, line: 4, reason: 'checkpoint 8 before the frontier' },
          ...[5, 6, 7, 8, 9].map((line) => ({ kind: 'bundle' as const, line, reason: 'malformed record: an event before the frontier' })),
          { kind: 'checkpoint', treeSize: 13, line: 11, reason: 'checkpoint 13 before the frontier' },
          { kind: 'bundle', line: 12, reason: 'end record counts 5 events and 2 checkpoints, the bundle has 0 and 2' },
        ],
      },
      RANGED,
    );

  it.each<[string, Record<string, unknown>]>([
    ['unexpected frontier for size 7', { size: 7 }],
    ['unexpected frontier for size 8', { size: '8' }],
    ['frontier.hashes must be an array', { hashes: 'AAAA' }],
    ['frontier of size 8 needs 1 hashes', { hashes: [] }],
    ['frontier.hashes[0] must be standard base64 of 32 bytes', { hashes: ['AAAA'] }],
    ['frontier.hashes[0] must be standard base64 of 32 bytes', { hashes: [Buffer.alloc(31, 1).toString('base64')] }],
    ['frontier.hashes[0] must be standard base64 of 32 bytes', { hashes: [7] }],
  ])('refuses a frontier: %s', (reason, change) => {
    const b = ranged.map((r) => (r === frontier ? { ...frontier, ...change } : r));
    expect(run(b)).toEqual(refused(reason));
  });

  it('refuses a frontier in a range that starts at 0, and a second frontier', () => {
    const b = insert(good, good[2], [{ type: 'frontier', size: 0, hashes: [] }]);
    expect(run(b)).toEqual(expected({ failures: [{ kind: 'bundle', line: 3, reason: 'malformed record: unexpected frontier for size 0' }] }));
    const twice = insert(ranged, ranged[3], [structuredClone(frontier)]);
    expect(run(twice)).toEqual({ ...RANGED, ok: false, failureCount: 1, failures: [{ kind: 'bundle', line: 4, reason: 'malformed record: unexpected frontier for size 8' }] });
  });

  it('names the frontier that does not reproduce the signed root, then the root rebuilt on top of it', () => {
    const wrong = Buffer.alloc(32, 7);
    const b = ranged.map((r) => (r === frontier ? { ...frontier, hashes: [b64(wrong)] } : r));
    const rebuilt = rootOf(log.leaves.slice(8, 13), 8, [wrong]);
    expect(run(b)).toEqual(
      expected(
        {
          failures: [
            { kind: 'checkpoint', treeSize: 8, line: 4, reason: 'checkpoint 8: the frontier does not reproduce the signed root' },
            {
              kind: 'checkpoint',
              treeSize: 13,
              line: 11,
              reason: `checkpoint 13: root ${b64(rebuilt)} rebuilt from the leaves differs from the signed root ${b64(log.root(13))}; the first altered leaf is in [8, 13)`,
            },
          ],
        },
        RANGED,
      ),
    );
  });

  it('names a checkpoint that comes before the frontier', () => {
    const cp8 = cpAt(ranged, 8);
    const b = insert(without(ranged, cp8), frontier, [cp8]);
    expect(run(b)).toEqual(expected({ failures: [{ kind: 'checkpoint', treeSize: 8, line: 3, reason: 'checkpoint 8 before the frontier' }] }, RANGED));
  });
});

describe('BundleVerifier: events', () => {
  it('names a duplicated leaf', () => {
    const b = insert(good, ev(good, 9), [structuredClone(ev(good, 9))], true);
    expect(run(b)).toEqual(
      expected({
        events: 14,
        failures: [
          { kind: 'leaf', leafIndex: 9, line: 16, reason: 'leaf 9 appears twice (a second event claims its position)' },
          { kind: 'bundle', line: 22, reason: 'end record counts 13 events and 3 checkpoints, the bundle has 14 and 3' },
        ],
      }),
    );
  });

  it('names a missing leaf, and every leaf after it that no longer falls in its place', () => {
    const b = without(good, ev(good, 9));
    expect(run(b)).toEqual(
      expected({
        events: 12,
        fieldsVerified: 48,
        failures: [
          { kind: 'leaf', leafIndex: 9, line: 15, reason: 'leaf 9 is missing (next event has leaf index 10)' },
          { kind: 'leaf', leafIndex: 10, line: 16, reason: 'leaf 10 is missing (next event has leaf index 11)' },
          { kind: 'leaf', leafIndex: 11, line: 17, reason: 'leaf 11 is missing (next event has leaf index 12)' },
          { kind: 'checkpoint', treeSize: 13, line: 19, reason: 'checkpoint 13 is out of place (after leaf 11)' },
          { kind: 'bundle', line: 20, reason: 'end record counts 13 events and 3 checkpoints, the bundle has 12 and 3' },
          { kind: 'leaf', leafIndex: 12, line: 20, reason: 'leaves [12, 13) are missing' },
        ],
      }),
    );
  });

  it.each<[string, unknown, number]>([
    ['an earlier leaf index', 5, 10],
    ['a leaf index of -1 at the start', -1, 0],
    ['a leaf index that is a string', '10', 9],
  ])('sets aside an event with %s without folding it in', (_name, leafIndex, expectedIndex) => {
    const before = ev(good, expectedIndex);
    const b = insert(good, before, [{ ...structuredClone(ev(good, 5)), leafIndex }]);
    expect(run(b)).toEqual(
      expected({
        events: 14,
        failures: [
          {
            kind: 'leaf',
            leafIndex: expectedIndex,
            line: at(b, before) - 1,
            reason: `leaf ${expectedIndex} expected, got an event with leaf index ${String(leafIndex)} (duplicate or out of order)`,
          },
          { kind: 'bundle', line: 22, reason: 'end record counts 13 events and 3 checkpoints, the bundle has 14 and 3' },
        ],
      }),
    );
  });

  it('names a leaf past the end of the bundle', () => {
    const g = structuredClone(good);
    const b = insert(g, g.at(-1), [structuredClone(log.events[13]!)]);
    endOf(b).events = 14;
    expect(run(b)).toEqual(expected({ events: 14, fieldsVerified: 56, failures: [{ kind: 'leaf', leafIndex: 13, line: 21, reason: 'leaf 13 is past the bundle end 13' }] }));
  });

  /** The failure at checkpoint 13 when leaf 10 was folded in as `leaf10` instead of its real hash. */
  const rootFailure = (leaf10: Buffer): BundleFailure => {
    const leaves = log.leaves.slice(0, 13);
    leaves[10] = leaf10;
    return {
      kind: 'checkpoint',
      treeSize: 13,
      line: 20,
      reason: `checkpoint 13: root ${b64(rootOf(leaves))} rebuilt from the leaves differs from the signed root ${b64(log.root(13))}; the first altered leaf is in [8, 13)`,
    };
  };
  const e10 = log.events[10]!;
  const leafOf = (fields: Record<string, string>) => leafHash(leafBytes({ org: ORG, id: e10.id, recordedAt: e10.recordedAt, fields }));
  const commitmentsOf10 = Object.fromEntries(Object.entries(e10.fields).map(([k, f]) => [k, f.commitment]));

  it.each<[string, unknown]>([
    ['null', null],
    ['an array', []],
    ['a string', 'fields'],
    ['absent', undefined],
  ])('names the leaf whose fields are %s, then the root that no longer matches', (_name, fields) => {
    const b = structuredClone(good);
    ev(b, 10).fields = fields as never;
    expect(run(b)).toEqual(
      expected({
        fieldsVerified: 48,
        failures: [{ kind: 'leaf', leafIndex: 10, line: 16, reason: 'leaf 10: fields missing' }, rootFailure(leafOf({}))],
      }),
    );
  });

  it.each<[string, unknown]>([
    ['a number', 5],
    ['null', null],
  ])('names a field that is %s, then the root that no longer matches', (_name, field) => {
    const b = structuredClone(good);
    (ev(b, 10).fields as Record<string, unknown>).action = field;
    const { action: _gone, ...rest } = commitmentsOf10;
    expect(run(b)).toEqual(
      expected({
        fieldsVerified: 51,
        failures: [{ kind: 'leaf', leafIndex: 10, line: 16, reason: 'leaf 10: field action is malformed' }, rootFailure(leafOf(rest))],
      }),
    );
  });

  it('names a field whose value no longer matches its commitment (the leaf itself still does)', () => {
    const b = structuredClone(good);
    ev(b, 10).fields.status!.value = 'attempt';
    expect(run(b)).toEqual(expected({ fieldsVerified: 51, failures: [{ kind: 'leaf', leafIndex: 10, line: 16, reason: 'leaf 10: field status does not match its commitment' }] }));
  });

  it('counts erased fields, not as failures', () => {
    const b = structuredClone(good);
    for (const name of ['principalId', 'details']) {
      ev(b, 10).fields[name]!.salt = null;
      delete ev(b, 10).fields[name]!.value;
    }
    expect(run(b)).toEqual(expected({ fieldsVerified: 50, erasedFields: 2, erased: [{ leafIndex: 10, field: 'principalId' }, { leafIndex: 10, field: 'details' }] }));
  });

  it.each<[string, Partial<BundleEvent>, string]>([
    ['a recordedAt without milliseconds', { recordedAt: '2026-11-27T12:00:10Z' }, 'leaf: recordedAt must be RFC 3339 UTC with milliseconds and Z, got 2026-11-27T12:00:10Z'],
    ['an id that is not a string', { id: 10 as never }, 'leaf: org and id must be strings'],
  ])('names a leaf that cannot be rebuilt (%s) and folds in a zero hash', (_name, change, message) => {
    const b = structuredClone(good);
    Object.assign(ev(b, 10), change);
    expect(run(b)).toEqual(
      expected({
        failures: [{ kind: 'leaf', leafIndex: 10, line: 16, reason: `leaf 10: cannot rebuild the leaf: ${message}` }, rootFailure(Buffer.alloc(32))],
      }),
    );
  });

  it.each<[string, boolean]>([
    ['an erased field', true],
    ['a field with its salt and value', false],
  ])('names a leaf that cannot be rebuilt because %s has a commitment in upper case', (_name, erase) => {
    const b = structuredClone(good);
    const f = ev(b, 10).fields.status!;
    expect(f.commitment.toUpperCase()).not.toBe(f.commitment);
    f.commitment = f.commitment.toUpperCase();
    if (erase) {
      f.salt = null;
      delete f.value;
    }
    const failures: BundleFailure[] = erase ? [] : [{ kind: 'leaf', leafIndex: 10, line: 16, reason: 'leaf 10: field status does not match its commitment' }];
    failures.push(
      { kind: 'leaf', leafIndex: 10, line: 16, reason: 'leaf 10: cannot rebuild the leaf: leaf: fields["status"] must be 64 lower-case hex digits' },
      rootFailure(Buffer.alloc(32)),
    );
    expect(run(b)).toEqual(expected({ fieldsVerified: 51, erasedFields: erase ? 1 : 0, erased: erase ? [{ leafIndex: 10, field: 'status' }] : [], failures }));
  });

  it.each<[string, unknown, string]>([
    ['another leaf hash', b64(log.leaves[11]!), b64(log.leaves[11]!)],
    ['an empty leaf hash', '', '(none)'],
    ['no leaf hash', undefined, '(none)'],
    ['a leaf hash that is not a string', 5, '(none)'],
  ])("names the leaf whose rebuilt hash differs from the log's (%s)", (_name, leafHashValue, shown) => {
    const b = structuredClone(good);
    (ev(b, 10) as { leafHash: unknown }).leafHash = leafHashValue;
    expect(run(b)).toEqual(
      expected({ failures: [{ kind: 'leaf', leafIndex: 10, line: 16, reason: `leaf 10: rebuilt leaf hash ${b64(log.leaves[10]!)} differs from the log's leaf ${shown}` }] }),
    );
  });
});

describe('BundleVerifier: producer signatures', () => {
  // Six events, 1–5 signed by the producer: header 1, key 2, producer key 3, events 0–5 on 4–9, checkpoint 10, end 11.
  const plog = new Log(6, (i) => i > 0);
  const signed = plog.bundle({ end: 6, checkpoints: [6], keys: [keyRecord(), producerKeyRecord()] });
  const SIGNED = expected({
    end: 6,
    events: 6,
    fieldsVerified: 24,
    checkpointsVerified: 1,
    consistencyProofsVerified: 0,
    producerSignaturesVerified: 5,
    latest: { treeSize: 6, rootHash: b64(plog.root(6)), note: cpAt(signed, 6).note },
  });

  it('verifies each signature with the registered key', () => {
    expect(run(signed)).toEqual(SIGNED);
  });

  it('names each event signed by a key the bundle does not register', () => {
    const b = without(signed, signed[2]);
    const failures = [1, 2, 3, 4, 5].map((i) => ({ kind: 'leaf' as const, leafIndex: i, line: i + 3, reason: `leaf ${i}: signed by unknown producer key ${PRODUCER}` }));
    expect(run(b)).toEqual(expected({ producerSignaturesVerified: 0, failures }, SIGNED));
  });

  it('counts a signature over an erased field as unverifiable, not as a failure', () => {
    const b = structuredClone(signed);
    ev(b, 2).fields.principalId!.salt = null;
    delete ev(b, 2).fields.principalId!.value;
    expect(run(b)).toEqual(
      expected({ fieldsVerified: 23, erasedFields: 1, erased: [{ leafIndex: 2, field: 'principalId' }], producerSignaturesVerified: 4, producerSignaturesUnverifiable: 1 }, SIGNED),
    );
  });

  it('accepts events recorded up to the revocation of the key, names those after it', () => {
    const b = signed.map((r) => (r === signed[2] ? producerKeyRecord({ revokedAt: plog.events[3]!.recordedAt }) : r));
    const failures = [4, 5].map((i) => ({ kind: 'leaf' as const, leafIndex: i, line: i + 4, reason: `leaf ${i}: recorded after producer key ${PRODUCER} was revoked` }));
    expect(run(b)).toEqual(expected({ producerSignaturesVerified: 3, failures }, SIGNED));
  });

  it('names a signature that does not verify', () => {
    const b = structuredClone(signed);
    ev(b, 2).producerSignature = ev(b, 3).producerSignature;
    expect(run(b)).toEqual(
      expected({ producerSignaturesVerified: 4, failures: [{ kind: 'leaf', leafIndex: 2, line: 6, reason: `leaf 2: producer signature of key ${PRODUCER} does not verify` }] }, SIGNED),
    );
  });

  it('treats a null producerSignature as none', () => {
    const b = structuredClone(signed);
    (ev(b, 1) as { producerSignature: unknown }).producerSignature = null;
    expect(run(b)).toEqual(expected({ producerSignaturesVerified: 4 }, SIGNED));
  });

  it('checks no signature of an event whose fields already failed', () => {
    const b = structuredClone(signed);
    ev(b, 3).fields.action!.value = 'data.delete';
    expect(run(b)).toEqual(
      expected(
        { fieldsVerified: 23, producerSignaturesVerified: 4, failures: [{ kind: 'leaf', leafIndex: 3, line: 7, reason: 'leaf 3: field action does not match its commitment' }] },
        SIGNED,
      ),
    );
  });
});

describe('BundleVerifier: events checked elsewhere (pushChecked)', () => {
  // What the verifying CLI does with its worker threads: each event is checked (checkEvent) against
  // the producer keys the worker knows, and the verifier takes the result unless it no longer fits;
  // then the record is pushed as usual. The report must be the one pushing every record gives.
  const plog = new Log(6, (i) => i > 0);
  const signed = plog.bundle({ end: 6, checkpoints: [3, 6], keys: [keyRecord(), producerKeyRecord()] });
  const isEvent = (r: unknown): r is BundleEvent => (r as BundleRecord).type === 'event';
  /** The producer keys of the `producerKey` records before line `upTo` (0-based). */
  const keysBefore = (b: unknown[], upTo: number) =>
    new Map<string, ProducerKeyEntry>(
      b
        .slice(0, upTo)
        .filter((r): r is BundleProducerKey => (r as BundleRecord).type === 'producerKey')
        .map((k) => [k.keyId, readProducerKey(k)]),
    );
  const checked = (e: BundleEvent, keys = new Map<string, ProducerKeyEntry>(), org = ORG): CheckedEvent => ({
    org,
    leafIndex: e.leafIndex,
    check: checkEvent(org, e, keys),
  });
  /** Every event through pushChecked (with the keys `keysFor` gives), the rest and the refused through push. */
  function runChecked(b: unknown[], keysFor: (line: number) => Map<string, ProducerKeyEntry> = (i) => keysBefore(b, i)) {
    const v = new BundleVerifier({ verifiers });
    let taken = 0;
    b.forEach((r, i) => {
      if (isEvent(r) && v.pushChecked(checked(r, keysFor(i)))) taken++;
      else v.push(r);
    });
    return { taken, report: v.finish() };
  }

  it.each<[string, unknown[]]>([
    ['a correct bundle', good],
    ['signed events', signed],
    ['a duplicated leaf', insert(good, ev(good, 9), [structuredClone(ev(good, 9))], true)],
    ['a missing leaf', without(good, ev(good, 9))],
    ['an event after the bundle end', insert(good, endOf(good), [structuredClone(log.events[13]!)])],
  ])('reports what pushing every record reports, for %s', (_name, b) => {
    const events = b.filter(isEvent).length;
    expect(runChecked(b)).toEqual({ taken: events, report: run(b) });
  });

  it('fails an event whose check threw on malformed input, on its own line, and lets a bug through', () => {
    // checkEvent catches what the event makes it throw; JSON input has not been seen to, so the
    // worker's result is written here as it would come back.
    const v = new BundleVerifier({ verifiers });
    const line = good.indexOf(ev(good, 4));
    for (const r of good.slice(0, line)) v.push(r);
    const e = checked(ev(good, 4));
    expect(v.pushChecked({ ...e, check: { ...e.check, thrown: { message: 'fields.x is odd', malformed: true } } })).toBe(true);
    expect(() => v.pushChecked({ ...e, check: { ...e.check, thrown: { message: 'a bug', malformed: false } } })).toThrow(new Error('a bug'));
    expect(v.finish().failures[0]).toEqual({ kind: 'bundle', line: line + 1, reason: 'malformed record: fields.x is odd' });
  });

  it('refuses an event before the header, after the end, or of another organization, and consumes nothing', () => {
    const e = ev(good, 0);
    const v = new BundleVerifier({ verifiers });
    expect(v.pushChecked(checked(e))).toBe(false);
    for (const r of good.slice(0, 2)) v.push(r);
    expect(v.pushChecked(checked(e, undefined, 'another-org'))).toBe(false);
    for (const r of good.slice(2)) v.push(r);
    expect(v.pushChecked(checked(ev(good, 12)))).toBe(false);
    // Nothing counted, no line skipped: the report of the records alone.
    expect(v.finish()).toEqual(GOOD);
  });

  it('refuses a check made with another producer key than the verifier holds at that point', () => {
    const line = signed.indexOf(ev(signed, 2));
    const v = new BundleVerifier({ verifiers });
    for (const r of signed.slice(0, line)) v.push(r);
    const e = ev(signed, 2);
    const entry = readProducerKey(producerKeyRecord());
    // The worker did not know the key yet; it knew it with another revocation; it knew another key.
    expect(v.pushChecked(checked(e))).toBe(false);
    expect(v.pushChecked(checked(e, new Map([[PRODUCER, { ...entry, revokedAt: Date.parse(STORED_AT) }]])))).toBe(false);
    expect(v.pushChecked(checked(e, new Map([[PRODUCER, { ...entry, publicKey: Buffer.alloc(32, 1) }]])))).toBe(false);
    expect(v.pushChecked(checked(e, new Map([[PRODUCER, entry]])))).toBe(true);
    for (const r of signed.slice(line + 1)) v.push(r);
    expect(v.finish()).toEqual(run(signed));
  });

  it('refuses a check that found a producer key the verifier does not hold', () => {
    const b = without(signed, signed[2]); // the producerKey record
    const withKey = () => new Map([[PRODUCER, readProducerKey(producerKeyRecord())]]);
    // Event 0 is unsigned (its check names no key): taken. Events 1–5 are refused and pushed again.
    expect(runChecked(b, withKey)).toEqual({ taken: 1, report: run(b) });
  });
});

describe('BundleVerifier: consistency proofs and checkpoints', () => {
  const cons8 = consTo(good, 8);
  const cp8 = cpAt(good, 8);

  it('refuses two consistency proofs in a row', () => {
    const b = insert(good, cons8, [structuredClone(cons8)], true);
    expect(run(b)).toEqual(expected({ failures: [{ kind: 'bundle', line: 13, reason: 'malformed record: two consistency proofs in a row' }] }));
  });

  it.each<[string, Partial<Record<keyof BundleConsistency, unknown>>]>([
    ['consistency.fromSize must be a non-negative integer', { fromSize: -1 }],
    ['consistency.toSize must be a non-negative integer', { toSize: '8' }],
    ['consistency.hashes must be an array', { hashes: null }],
  ])('refuses a consistency proof: %s', (message, change) => {
    const b = good.map((r) => (r === cons8 ? { ...cons8, ...change } : r));
    expect(run(b)).toEqual(
      expected({
        consistencyProofsVerified: 1,
        failures: [
          { kind: 'bundle', line: 12, reason: `malformed record: ${message}` },
          { kind: 'checkpoint', treeSize: 8, line: 13, reason: 'no consistency proof from checkpoint 3 to 8' },
        ],
      }),
    );
  });

  it.each<[string, BundleConsistency | null]>([
    ['missing', null],
    ['from another size', log.consistency(2, 8)],
    ['to another size', log.consistency(3, 9)],
  ])('names the checkpoint whose consistency proof is %s', (_name, proof) => {
    const b = proof === null ? without(good, cons8) : good.map((r) => (r === cons8 ? proof : r));
    expect(run(b)).toEqual(
      expected({ consistencyProofsVerified: 1, failures: [{ kind: 'checkpoint', treeSize: 8, line: at(b, cpAt(b, 8)), reason: 'no consistency proof from checkpoint 3 to 8' }] }),
    );
  });

  it.each<[string, number, unknown]>([
    ['not base64', 0, 'AAA='],
    ['31 bytes', 1, Buffer.alloc(31, 2).toString('base64')],
    ['not a string', 0, 32],
  ])('names the checkpoint whose consistency proof holds a hash that is %s', (_name, i, hash) => {
    const b = structuredClone(good);
    (consTo(b, 8).hashes as unknown[])[i] = hash;
    expect(run(b)).toEqual(
      expected({
        consistencyProofsVerified: 1,
        failures: [{ kind: 'checkpoint', treeSize: 8, line: 13, reason: `checkpoint 8 is not consistent with checkpoint 3: consistency.hashes[${i}] must be standard base64 of 32 bytes` }],
      }),
    );
  });

  it('names the checkpoint that is not consistent with the one before, with the proof error', () => {
    const b = structuredClone(good);
    const proof = consTo(b, 13);
    proof.hashes[0] = b64(Buffer.alloc(32, 1));
    let message = '';
    try {
      verifyConsistency(8, 13, proof.hashes.map((h) => Buffer.from(h, 'base64')), log.root(8), log.root(13));
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/mismatch/);
    expect(run(b)).toEqual(
      expected({ consistencyProofsVerified: 1, failures: [{ kind: 'checkpoint', treeSize: 13, line: 20, reason: `checkpoint 13 is not consistent with checkpoint 8: ${message}` }] }),
    );
  });

  it('names a consistency proof before the first checkpoint, and one left without its checkpoint', () => {
    const before = insert(good, cpAt(good, 3), [log.consistency(2, 3)]);
    expect(run(before)).toEqual(expected({ failures: [{ kind: 'checkpoint', treeSize: 3, line: 7, reason: 'unexpected consistency proof before the first checkpoint' }] }));
    const dangling = insert(good, good.at(-1), [{ type: 'consistency', fromSize: 13, toSize: 14, hashes: [] }]);
    expect(run(dangling)).toEqual(expected({ failures: [{ kind: 'bundle', line: 22, reason: 'a consistency proof without its checkpoint' }] }));
  });

  /** When checkpoint 13 is refused, the bundle end is covered by no checkpoint and 8 is the latest. */
  const refused13 = (failure: BundleFailure): BundleReport =>
    expected({
      checkpointsVerified: 2,
      consistencyProofsVerified: 1,
      latest: latestOf(good, 8),
      failures: [
        failure,
        { kind: 'checkpoint', treeSize: 13, line: 21, reason: 'no signed checkpoint covers the bundle end 13' },
        { kind: 'checkpoint', treeSize: 8, line: 21, reason: 'the log head is at 13 but the latest signed checkpoint is at 8: unsigned leaves were appended' },
      ],
    });

  it.each<[string, Partial<Record<keyof BundleCheckpoint, unknown>>, BundleFailure]>([
    [
      'signed by an unknown key',
      { note: log.checkpoint(13, { signers: [otherSigner] }).note },
      { kind: 'checkpoint', treeSize: 13, line: 20, reason: `checkpoint 13: note has no verifiable signature from a known key (signed by: test.audit+${otherSigner.keyId.toString('hex')})` },
    ],
    ['that is not a signed note', { note: 'garbage' }, { kind: 'checkpoint', treeSize: 13, line: 20, reason: 'checkpoint 13: note has no blank line before its signatures' }],
    [
      'for another log',
      { note: log.checkpoint(13, { origin: OTHER_ORIGIN }).note },
      { kind: 'checkpoint', treeSize: 13, line: 20, reason: `checkpoint 13: origin ${OTHER_ORIGIN} is not ${ORIGIN}` },
    ],
    ['whose record and note disagree on the size', { treeSize: 12 }, { kind: 'checkpoint', treeSize: 12, line: 20, reason: 'checkpoint record says size 12, its note says 13' }],
    ['with a malformed size', { treeSize: -13 }, { kind: 'bundle', line: 20, reason: 'malformed record: checkpoint.treeSize must be a non-negative integer' }],
  ])('refuses a checkpoint %s', (_name, change, failure) => {
    const cp13 = cpAt(good, 13);
    const b = good.map((r) => (r === cp13 ? { ...cp13, ...change } : r));
    expect(run(b)).toEqual(refused13(failure));
  });

  it('names a checkpoint that does not follow the previous one', () => {
    const g = structuredClone(good);
    const b = insert(g, cpAt(g, 8), [structuredClone(cp8)], true);
    endOf(b).checkpoints = 4;
    expect(run(b)).toEqual(expected({ checkpointsVerified: 4, failures: [{ kind: 'checkpoint', treeSize: 8, line: 14, reason: 'checkpoint 8 does not follow checkpoint 8' }] }));
  });

  it('names a checkpoint out of place, behind or ahead of its leaves', () => {
    const cp3 = cpAt(good, 3);
    const late = insert(without(good, cp3), ev(good, 4), [cp3], true);
    expect(run(late)).toEqual(expected({ failures: [{ kind: 'checkpoint', treeSize: 3, line: 8, reason: 'checkpoint 3 is out of place (after leaf 4)' }] }));
    const early = insert(without(good, cons8, cp8), ev(good, 7), [cons8, cp8]);
    expect(run(early)).toEqual(expected({ failures: [{ kind: 'checkpoint', treeSize: 8, line: at(early, cp8), reason: 'checkpoint 8 is out of place (after leaf 6)' }] }));
  });

  it('names a checkpoint that comes after its leaves even when it is past the end of the range', () => {
    // The range ends at 2, so leaves 2–12 are past its end; checkpoint 3 comes after leaf 4.
    const g = structuredClone(good);
    headerOf(g).end = 2;
    const cp3 = cpAt(g, 3);
    const b = insert(without(g, cp3), ev(g, 4), [cp3], true);
    const failures: BundleFailure[] = [];
    b.forEach((r, i) => {
      const rec = r as BundleRecord;
      if (rec.type === 'event' && rec.leafIndex >= 2) failures.push({ kind: 'leaf', leafIndex: rec.leafIndex, line: i + 1, reason: `leaf ${rec.leafIndex} is past the bundle end 2` });
      if (r === cp3) failures.push({ kind: 'checkpoint', treeSize: 3, line: i + 1, reason: 'checkpoint 3 is out of place (after leaf 4)' });
    });
    expect(failures).toHaveLength(12);
    expect(run(b)).toEqual(expected({ end: 2, failures }));
  });

  it('accepts the latest checkpoint past the end of the range', () => {
    const b = log.bundle({ end: 8, checkpoints: [3, 8, 13] });
    expect(run(b)).toEqual(expected({ end: 8, events: 8, fieldsVerified: 32, latest: latestOf(b, 13) }));
  });
});

describe('BundleVerifier: the end of the bundle', () => {
  it('names a bundle without its end record', () => {
    expect(run(good.slice(0, -1))).toEqual(expected({ failures: [{ kind: 'bundle', line: 20, reason: 'bundle is truncated (no end record)' }] }));
  });

  it.each<[string, number, number]>([
    ['events', 12, 3],
    ['checkpoints', 13, 2],
  ])('names an end record that miscounts the %s', (_name, events, checkpoints) => {
    const b = structuredClone(good);
    Object.assign(endOf(b), { events, checkpoints });
    expect(run(b)).toEqual(
      expected({ failures: [{ kind: 'bundle', line: 21, reason: `end record counts ${events} events and ${checkpoints} checkpoints, the bundle has 13 and 3` }] }),
    );
  });

  it.each<[number, string]>([
    [8, 'the log head is at 8 but a checkpoint at 13 was signed: the head was rolled back'],
    [14, 'the log head is at 14 but the latest signed checkpoint is at 13: unsigned leaves were appended'],
  ])('names a log head (%i) that is not the latest checkpoint', (headSize, reason) => {
    const b = structuredClone(good);
    headerOf(b).headSize = headSize;
    expect(run(b)).toEqual(expected({ failures: [{ kind: 'checkpoint', treeSize: 13, line: 21, reason }] }));
  });

  it('names a range end that no signed checkpoint covers', () => {
    const b = log.bundle({ end: 13, checkpoints: [3, 8], headSize: 8 });
    expect(run(b)).toEqual(
      expected({ checkpointsVerified: 2, consistencyProofsVerified: 1, latest: latestOf(b, 8), failures: [{ kind: 'checkpoint', treeSize: 13, line: b.length, reason: 'no signed checkpoint covers the bundle end 13' }] }),
    );
  });

  describe('a range whose end is not a checkpoint, with a later checkpoint after it', () => {
    // [0, 10) with checkpoints 3, 8 and 13: the proof 8 → 13 says the log grew, not what leaves 8
    // and 9 were, and no signed root is ever compared with them.
    const b = log.bundle({ end: 10, checkpoints: [3, 8, 13] });
    const failure = { kind: 'checkpoint' as const, treeSize: 10, line: b.length, reason: 'no signed checkpoint at the bundle end 10: leaves [8, 10) are bound to no signed root' };
    const report = expected({ end: 10, events: 10, fieldsVerified: 40, latest: latestOf(b, 13), failures: [failure] });

    it('names the leaves no signed root binds', () => {
      expect(run(b)).toEqual(report);
    });

    it('so leaves rewritten there, with matching commitments and leaf hashes, do not pass', () => {
      const forged = structuredClone(b);
      for (const i of [8, 9]) {
        const e = ev(forged, i);
        const salt = newSalt();
        e.fields.principalId = { commitment: commitField(salt, 'forged'), salt: b64(salt), value: 'forged' };
        const commitments = Object.fromEntries(Object.entries(e.fields).map(([k, f]) => [k, f.commitment]));
        e.leafHash = b64(leafHash(leafBytes({ org: ORG, id: e.id, recordedAt: e.recordedAt, fields: commitments })));
      }
      expect(run(forged)).toEqual(report);
    });
  });

  it('names every leaf from the start when no signed root is compared inside the range', () => {
    // [0, 5) with only checkpoint 8 after it: no root binds any leaf of the range, leaf 0 included.
    const b = log.bundle({ end: 5, checkpoints: [8] });
    expect(run(b)).toEqual(
      expected({
        end: 5,
        events: 5,
        fieldsVerified: 20,
        checkpointsVerified: 1,
        consistencyProofsVerified: 0,
        latest: latestOf(b, 8),
        failures: [{ kind: 'checkpoint', treeSize: 5, line: b.length, reason: 'no signed checkpoint at the bundle end 5: leaves [0, 5) are bound to no signed root' }],
      }),
    );
  });

  it('names the leaves missing at the end', () => {
    const b = log.bundle({ end: 11, checkpoints: [3, 8], headSize: 8 });
    headerOf(b).end = 13;
    endOf(b).events = 13;
    expect(run(b)).toEqual(
      expected({
        events: 11,
        fieldsVerified: 44,
        checkpointsVerified: 2,
        consistencyProofsVerified: 1,
        latest: latestOf(b, 8),
        failures: [
          { kind: 'bundle', line: b.length, reason: 'end record counts 13 events and 2 checkpoints, the bundle has 11 and 2' },
          { kind: 'leaf', leafIndex: 11, line: b.length, reason: 'leaves [11, 13) are missing' },
          { kind: 'checkpoint', treeSize: 13, line: b.length, reason: 'no signed checkpoint covers the bundle end 13' },
        ],
      }),
    );
  });
});

describe('BundleVerifier: a pinned checkpoint', () => {
  const pin = (size: number, over: Partial<Checkpoint> = {}): Checkpoint => ({ origin: ORIGIN, size, rootHash: log.root(size), ...over });

  it('passes a pin the bundle holds, at a checkpoint or at its latest', () => {
    expect(run(good, { pinned: pin(8) })).toEqual(GOOD);
    expect(run(good, { pinned: pin(13) })).toEqual(GOOD);
  });

  it("names a pin whose root differs from the log's at its size", () => {
    expect(run(good, { pinned: pin(8, { rootHash: log.root(9) }) })).toEqual(
      expected({ failures: [{ kind: 'checkpoint', treeSize: 8, line: 13, reason: "the log's root at the pinned size 8 differs from the pinned checkpoint: history was rewritten" }] }),
    );
  });

  it('names a pin for another log, once', () => {
    expect(run(good, { pinned: pin(8, { origin: OTHER_ORIGIN }) })).toEqual(
      expected({ failures: [{ kind: 'checkpoint', treeSize: 8, line: 6, reason: `pinned checkpoint is for origin ${OTHER_ORIGIN}, not ${ORIGIN}` }] }),
    );
  });

  it('names a pin beyond the latest checkpoint: the log was rolled back', () => {
    expect(run(good, { pinned: pin(13, { size: 20 }) })).toEqual(
      expected({ failures: [{ kind: 'checkpoint', treeSize: 20, line: 21, reason: "the pinned checkpoint (size 20) is beyond the log's latest signed checkpoint (13): the log was rolled back" }] }),
    );
  });

  it('warns about a pin the bundle cannot check: not a checkpoint of it, before its range, or no checkpoint at all', () => {
    expect(run(good, { pinned: pin(5) })).toEqual(expected({ warnings: ["the pinned checkpoint (size 5) is outside this bundle's range and could not be checked"] }));
    const ranged = log.bundle({ start: 8, end: 13, checkpoints: [8, 13] });
    expect(run(ranged, { pinned: pin(3) })).toEqual(
      expected({
        start: 8,
        events: 5,
        fieldsVerified: 20,
        checkpointsVerified: 2,
        consistencyProofsVerified: 1,
        latest: latestOf(ranged, 13),
        warnings: ["the pinned checkpoint (size 3) is outside this bundle's range and could not be checked"],
      }),
    );
    const empty = [{ ...(good[0] as BundleHeader), start: 0, end: 0, headSize: 0 }, { type: 'end', events: 0, checkpoints: 0 }];
    expect(run(empty, { pinned: pin(0) })).toEqual(
      expected({
        end: 0,
        events: 0,
        fieldsVerified: 0,
        checkpointsVerified: 0,
        consistencyProofsVerified: 0,
        latest: null,
        warnings: ["the pinned checkpoint (size 0) is outside this bundle's range and could not be checked"],
      }),
    );
  });

  it('does not check a pin at the size of a checkpoint out of place, and says so', () => {
    const b = without(good, ev(good, 9));
    const r = run(b, { pinned: pin(13) });
    expect(r.failureCount).toBe(6);
    expect(r.failures.map((f) => f.reason)).not.toContain("the pinned checkpoint (size 13) is beyond the log's latest signed checkpoint (13): the log was rolled back");
    expect(r.warnings).toEqual(["the pinned checkpoint (size 13) is outside this bundle's range and could not be checked"]);
  });

  it("checks a pin at the range's end against the leaves when the only checkpoint there is past the end", () => {
    // [0, 10) with checkpoint 8 and the latest checkpoint 13: no signed root at 10, but the pin is one.
    const b = log.bundle({ end: 10, checkpoints: [8, 13] });
    const base = expected({ end: 10, events: 10, fieldsVerified: 40, checkpointsVerified: 2, consistencyProofsVerified: 1, latest: latestOf(b, 13) });
    expect(run(b, { pinned: pin(10) })).toEqual(base);
    expect(run(b, { pinned: pin(10, { rootHash: log.root(11) }) })).toEqual(
      expected(
        { failures: [{ kind: 'checkpoint', treeSize: 10, line: at(b, cpAt(b, 13)), reason: 'the leaves up to the pinned size 10 do not reproduce the pinned root: history was rewritten' }] },
        base,
      ),
    );
  });
});

describe('BundleVerifier: key windows (warnings)', () => {
  const windowed = keyRecord({ notBefore: '2026-06-01T00:00:00.000Z', notAfter: '2026-12-01T00:00:00.000Z' });
  const withStoredAt = (keys: BundleRecord[], storedAt: Record<number, string | null>, signers?: Signer[]) => {
    const b = log.bundle({ end: 13, checkpoints: [3, 8, 13], keys });
    for (const [size, createdAt] of Object.entries(storedAt)) {
      const cp = cpAt(b, Number(size));
      if (signers) cp.note = log.checkpoint(cp.treeSize, { signers }).note;
      cp.createdAt = createdAt;
    }
    return b;
  };

  it('accepts checkpoints stored up to a minute outside the window of their key', () => {
    const b = withStoredAt([windowed], { 3: '2026-05-31T23:59:00.000Z', 8: '2026-12-01T00:01:00.000Z', 13: null });
    expect(run(b).warnings).toEqual([]);
  });

  it('warns about checkpoints stored more than a minute outside the window of their key', () => {
    const b = withStoredAt([windowed], { 3: '2026-05-31T23:58:59.999Z', 8: '2026-12-01T00:01:00.001Z', 13: null });
    expect(run(b)).toEqual(
      expected({
        warnings: [
          `checkpoint 3 was stored at 2026-05-31T23:58:59.999Z, outside the window of key test.audit+${KEY_ID}`,
          `checkpoint 8 was stored at 2026-12-01T00:01:00.001Z, outside the window of key test.audit+${KEY_ID}`,
        ],
        latest: { ...GOOD.latest!, note: cpAt(b, 13).note },
      }),
    );
  });

  it('takes the window of the key that signed, and only of keys that verified', () => {
    const retired = keyRecord({ keyId: 'deadbeef', name: 'retired', notBefore: '2020-01-01T00:00:00.000Z', notAfter: '2021-01-01T00:00:00.000Z' });
    expect(run(withStoredAt([retired, keyRecord()], {})).warnings).toEqual([]);
    // A co-signer the auditor does not trust, listed with a window that excludes the checkpoints.
    const cosigner = keyRecord({ keyId: otherSigner.keyId.toString('hex'), name: otherSigner.name, verifierKey: otherKey.verifierKey, notBefore: '2020-01-01T00:00:00.000Z', notAfter: '2021-01-01T00:00:00.000Z' });
    const b = withStoredAt([keyRecord(), cosigner], { 3: STORED_AT, 8: STORED_AT, 13: STORED_AT }, [signer, otherSigner]);
    const r = run(b);
    expect(r.failures).toEqual([]);
    expect(r.warnings).toEqual([]);
  });

  it('has no window to compare without the key record, and none to exceed without an end', () => {
    expect(run(withStoredAt([], { 3: '2019-01-01T00:00:00.000Z' })).warnings).toEqual([]);
    expect(run(withStoredAt([keyRecord()], { 13: '2099-01-01T00:00:00.000Z' })).warnings).toEqual([]);
  });
});

describe('BundleVerifier: listing caps', () => {
  it('lists at most maxListed failures and erasures, and counts them all', () => {
    const b = structuredClone(good);
    for (const i of [9, 10, 11]) ev(b, i).fields.action!.value = 'data.delete';
    for (const i of [4, 5]) {
      ev(b, i).fields.details!.salt = null;
      delete ev(b, i).fields.details!.value;
    }
    expect(run(b, { maxListed: 2 })).toEqual(
      expected({
        fieldsVerified: 47,
        erasedFields: 2,
        erased: [{ leafIndex: 4, field: 'details' }, { leafIndex: 5, field: 'details' }],
        failureCount: 3,
        failures: [9, 10].map((i) => ({ kind: 'leaf' as const, leafIndex: i, line: i + 6, reason: `leaf ${i}: field action does not match its commitment` })),
      }),
    );
    const one = run(b, { maxListed: 1 });
    expect(one.erased).toEqual([{ leafIndex: 4, field: 'details' }]);
    expect(one.failures).toHaveLength(1);
    expect(one.failureCount).toBe(3);
  });

  it('lists 100 failures by default', () => {
    const r = run([good[0], ...Array.from({ length: 101 }, () => 0)]);
    expect(r.failures).toHaveLength(100);
    expect(r.failures[99]).toEqual({ kind: 'bundle', line: 101, reason: 'malformed record: a bundle line must be a JSON object' });
    // 101 lines, then: truncated, leaves [0, 13) missing, no checkpoint covers 13.
    expect(r.failureCount).toBe(104);
  });
});
