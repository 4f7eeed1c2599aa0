/**
 * `audit-verify bundle --threads N` (server/src/cli/audit-verify-bundle.ts): worker threads parse
 * and check batches of events, this thread folds them in order. The report must be the one the
 * reference path (one thread, every line parsed and pushed) gives, to the byte, for good bundles
 * and every kind of damage, whatever the number of threads and wherever the batches cut the
 * bundle (between an event and its checkpoint, a producer key and the events it signs…); a worker
 * that fails must fail the verification.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import fc from 'fast-check';

import {
  VerifyPool,
  checkEventLines,
  verifyBundleFile,
  type BatchChecker,
  type BatchChecks,
  type BatchMessage,
  type BatchOptions,
} from '../../src/cli/audit-verify-bundle';
import { main } from '../../src/cli/audit-verify';
import {
  BUNDLE_FORMAT,
  BundleVerifier,
  appendLeaves,
  commitField,
  formatRecordedAt,
  generateSignerKey,
  newSalt,
  parseSignerKey,
  parseVerifierKey,
  planConsistency,
  producerKeyId,
  proveConsistency,
  frontierNodes,
  signCheckpoint,
  signProducerEvent,
  type BundleReport,
  type BundleVerifierOptions,
  type CommittedField,
} from '../../src/ledger';
import { committedEvent } from './committed-event';

const ORG = '0190c0de-0000-4000-8000-0000000000aa';
const ORIGIN = `test.audit/${ORG}`;
const key = generateSignerKey('test.audit');
const signer = parseSignerKey(key.signerKey);
const verifiers = [parseVerifierKey(key.verifierKey)];

const producer = (() => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const seed = Buffer.from(privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(-32));
  const pub = Buffer.from(publicKey.export({ format: 'der', type: 'spki' }).subarray(-32));
  return { seed, pub, keyId: producerKeyId(pub) };
})();

type Rec = { type: string; [member: string]: any };

/** A log of `n` events with checkpoints at `sizes`, exported as [start, end) like the server does. */
function buildBundle(n: number, sizes: number[], start = 0): Rec[] {
  const nodes = new Map<string, Buffer>();
  const events: Rec[] = [];
  let size = 0;
  let frontier: Buffer[] = [];
  const roots = new Map<number, Buffer>();
  for (let i = 0; i < n; i++) {
    const values: Record<string, unknown> = {
      action: 'data.read',
      status: i % 3 ? 'success' : 'failure',
      principalId: `u-${i}`,
      details: { i, s: 'é☃', nested: [1, 2.5, null, true] },
    };
    const id = `0190c0de-0000-7000-8000-${String(i).padStart(12, '0')}`;
    const recordedAt = formatRecordedAt(new Date(Date.UTC(2026, 10, 27, 12, 0, 0, i)));
    const { fields, leafHash: h } = committedEvent(ORG, id, recordedAt, values);
    const appended = appendLeaves(size, frontier, [h]);
    for (const nd of appended.nodes) nodes.set(`${nd.level}/${nd.index}`, nd.hash);
    ({ size, frontier } = appended);
    roots.set(size, appended.root);
    if (i >= start) events.push({ type: 'event', leafIndex: i, id, recordedAt, leafHash: h.toString('base64'), fields });
  }
  const read = (ids: Array<{ level: number; index: number }>) => ids.map((x) => nodes.get(`${x.level}/${x.index}`)!);
  const cp = (s: number): Rec => ({
    type: 'checkpoint',
    treeSize: s,
    note: signCheckpoint({ origin: ORIGIN, size: s, rootHash: roots.get(s)! }, [signer]),
    createdAt: '2026-11-27T12:00:00.000Z',
  });
  const proof = (from: number, to: number): Rec => ({
    type: 'consistency',
    fromSize: from,
    toSize: to,
    hashes: proveConsistency(from, to, read(planConsistency(from, to))).map((x) => x.toString('base64')),
  });
  const out: Rec[] = [
    { type: 'header', format: BUNDLE_FORMAT, origin: ORIGIN, organizationId: ORG, start, end: n, headSize: n, exportedAt: '2026-11-27T12:00:00.000Z' },
    { type: 'key', keyId: signer.keyId.toString('hex'), name: signer.name, verifierKey: key.verifierKey, notBefore: '2026-01-01T00:00:00.000Z', notAfter: null },
  ];
  let prev: number | null = null;
  if (start > 0) {
    out.push({ type: 'frontier', size: start, hashes: read(frontierNodes(start)).map((x) => x.toString('base64')) }, cp(start));
    prev = start;
  }
  for (const e of events) {
    const idx = e.leafIndex as number;
    for (const s of sizes.filter((x) => x === idx && x > start)) {
      if (prev !== null) out.push(proof(prev, s));
      out.push(cp(s));
      prev = s;
    }
    out.push(e);
  }
  if (prev !== null && prev !== n) out.push(proof(prev, n));
  out.push(cp(n));
  out.push({ type: 'end', events: events.length, checkpoints: out.filter((r) => r.type === 'checkpoint').length });
  return out;
}

const clone = <T>(x: T): T => structuredClone(x);
const eventAt = (b: Rec[], i: number) => b.find((r) => r.type === 'event' && r.leafIndex === i) as Rec & { fields: Record<string, CommittedField> };
const valuesOf = (e: Rec & { fields: Record<string, CommittedField> }) =>
  Object.fromEntries(Object.entries(e.fields).map(([k, f]) => [k, f.value]));
const producerKeyRecord = (revokedAt: string | null = null, keyId = producer.keyId): Rec => ({
  type: 'producerKey',
  keyId,
  name: 'ehr-frontend',
  publicKey: producer.pub.toString('base64'),
  createdAt: '2026-01-01T00:00:00.000Z',
  revokedAt,
});
/** Signs every event from leaf `from` on with the producer key. */
function sign(b: Rec[], from = 0): Rec[] {
  for (const r of b) {
    if (r.type === 'event' && (r.leafIndex as number) >= from) {
      r.producerSignature = signProducerEvent(valuesOf(r as never), producer.seed, producer.pub);
    }
  }
  return b;
}
const insertAfter = (b: Rec[], i: number, ...recs: Rec[]): Rec[] => {
  b.splice(i + 1, 0, ...recs);
  return b;
};
const lines = (b: Rec[]): string[] => b.map((r) => JSON.stringify(r));

const good = buildBundle(13, [3, 8]);

/** Every case: the bundle's lines, and verifier options when not the defaults. */
const cases: Array<[string, string[], Partial<BundleVerifierOptions>?]> = [
  ['a good bundle', lines(good)],
  ['a range that starts at a frontier', lines(buildBundle(13, [3, 8], 8))],
  ['a larger bundle with many checkpoints', lines(buildBundle(40, [1, 2, 7, 16, 17, 31]))],
  ['an erased field', lines(((b) => {
    const f = eventAt(b, 4).fields.principalId!;
    f.salt = null;
    delete f.value;
    return b;
  })(clone(good)))],
  ['a half-erased field', lines(((b) => ((eventAt(b, 4).fields.principalId!.salt = null), b))(clone(good)))],
  ['a tampered field value', lines(((b) => ((eventAt(b, 6).fields.action!.value = 'data.delete'), b))(clone(good)))],
  ['a replaced commitment', lines(((b) => {
    const salt = newSalt();
    const f = eventAt(b, 5).fields.action!;
    f.value = 'data.delete';
    f.salt = salt.toString('base64');
    f.commitment = commitField(salt, 'data.delete');
    return b;
  })(clone(good)))],
  ['a tampered leaf hash', lines(((b) => ((eventAt(b, 2).leafHash = Buffer.alloc(32, 7).toString('base64')), b))(clone(good)))],
  ['an empty leaf hash', lines(((b) => ((eventAt(b, 2).leafHash = ''), b))(clone(good)))],
  ['a missing leaf', lines(good.filter((r) => !(r.type === 'event' && r.leafIndex === 9)))],
  ['a duplicated leaf', lines(((b) => insertAfter(b, b.indexOf(eventAt(b, 9)), clone(eventAt(b, 9))))(clone(good)))],
  ['two leaves swapped', lines(((b) => {
    const i = b.indexOf(eventAt(b, 10));
    [b[i], b[i + 1]] = [b[i + 1]!, b[i]!];
    return b;
  })(clone(good)))],
  ['a leaf index that is not a number', lines(((b) => ((eventAt(b, 7).leafIndex = '7'), b))(clone(good)))],
  ['a leaf index that is null', lines(((b) => ((eventAt(b, 7).leafIndex = null), b))(clone(good)))],
  ['fields missing', lines(((b) => ((eventAt(b, 1).fields = 'none' as never), b))(clone(good)))],
  ['a malformed field', lines(((b) => ((eventAt(b, 1).fields.status = 5 as never), b))(clone(good)))],
  ['a malformed commitment', lines(((b) => ((eventAt(b, 1).fields.status!.commitment = 'XYZ'), b))(clone(good)))],
  ['a malformed recordedAt', lines(((b) => ((eventAt(b, 11).recordedAt = 'yesterday'), b))(clone(good)))],
  ['a checkpoint signed by an unknown key', lines(good), { verifiers: [parseVerifierKey(generateSignerKey('test.audit').verifierKey)] }],
  ['a checkpoint with a bad signature', lines(((b) => {
    const c = b.find((r) => r.type === 'checkpoint' && r.treeSize === 8)!;
    c.note = c.note.replace(/\n8\n/, '\n9\n');
    return b;
  })(clone(good)))],
  ['a missing consistency proof', lines(good.filter((r) => !(r.type === 'consistency' && r.toSize === 8)))],
  ['a wrong consistency proof', lines(((b) => {
    b.find((r) => r.type === 'consistency' && r.toSize === 13)!.hashes[0] = Buffer.alloc(32, 1).toString('base64');
    return b;
  })(clone(good)))],
  ['a truncated bundle', lines(good.slice(0, -1))],
  ['a bundle cut in the middle', lines(good.slice(0, good.length - 5))],
  ['wrong end counts', lines(((b) => ((b.at(-1)!.events = 12), b))(clone(good)))],
  ['a head past the latest checkpoint', lines(((b) => ((b[0]!.headSize = 14), b))(clone(good)))],
  ['a pinned checkpoint that matches', lines(good), { pinned: pinnedAt(8) }],
  ['a pinned checkpoint with another root', lines(good), { pinned: { ...pinnedAt(8), rootHash: Buffer.alloc(32) } }],
  ['many failures, few listed', lines(((b) => {
    for (let i = 0; i < 13; i++) eventAt(b, i).fields.action!.value = 'x';
    return b;
  })(clone(good))), { maxListed: 3 }],
  ['junk lines, blank lines and CRLF endings', ((l) => [...l.slice(0, 5), 'not json', '', `${l[5]}\r`, '   ', ...l.slice(6, 9), '{"type":"event",', '{"type":"event",garbage', ...l.slice(9)])(lines(good))],
  ['an event written with another member order', ((l) => {
    const e = eventAt(good, 6);
    const { type, ...rest } = e;
    return l.map((x) => (x === JSON.stringify(e) ? JSON.stringify({ ...rest, type }) : x));
  })(lines(good))],
  ['a line that starts as an event and is a checkpoint', ((l) => {
    const e = JSON.stringify(eventAt(good, 6));
    return l.map((x) => (x === e ? `${e.slice(0, -1)},"type":"checkpoint"}` : x));
  })(lines(good))],
  ['an event line that is a JSON array', ((l) => [...l.slice(0, 6), '["type","event"]', ...l.slice(6)])(lines(good))],
  ['data after the end record', [...lines(good), JSON.stringify(eventAt(good, 12))]],
  ['events before the header', [JSON.stringify(eventAt(good, 0)), ...lines(good)]],
  ['a second header', ((l) => [...l.slice(0, 6), l[0]!, ...l.slice(6)])(lines(good))],
  ['a malformed header for another organization, then the good one', ((l) => [
    JSON.stringify({ ...good[0], format: 'nope', organizationId: 'someone-else' }),
    ...l,
  ])(lines(good))],
  ['events signed by a producer key', lines(insertAfter(sign(clone(good)), 1, producerKeyRecord()))],
  ['a producer key in the middle: events signed before it are unknown', lines(((b) => insertAfter(b, b.indexOf(eventAt(b, 6)), producerKeyRecord()))(sign(clone(good))))],
  ['a producer key revoked during the bundle', lines(insertAfter(sign(clone(good)), 1, producerKeyRecord(formatRecordedAt(new Date(Date.UTC(2026, 10, 27, 12, 0, 0, 5))))))],
  ['a producer key revoked, then listed again unrevoked', lines(((b) => insertAfter(b, b.indexOf(eventAt(b, 4)), producerKeyRecord()))(insertAfter(sign(clone(good)), 1, producerKeyRecord('2026-01-01T00:00:00.000Z'))))],
  ['a tampered producer signature', lines(((b) => {
    const ps = eventAt(b, 3).producerSignature as { signature: string };
    ps.signature = Buffer.alloc(64, 9).toString('base64');
    return b;
  })(insertAfter(sign(clone(good)), 1, producerKeyRecord())))],
  ['a producer signature that is not an object', lines(((b) => ((eventAt(b, 3).producerSignature = 'yes'), b))(insertAfter(sign(clone(good)), 1, producerKeyRecord())))],
  ['a producer signature that is not a string', lines(((b) => (((eventAt(b, 3).producerSignature as { signature: unknown }).signature = 42), b))(insertAfter(sign(clone(good)), 1, producerKeyRecord())))],
  ['events signed by an unknown producer key', lines(sign(clone(good)))],
  ['an erased field in a signed event', lines(((b) => {
    const f = eventAt(b, 4).fields.principalId!;
    f.salt = null;
    delete f.value;
    return b;
  })(insertAfter(sign(clone(good)), 1, producerKeyRecord())))],
  ['a producer key record with a wrong key id', lines(insertAfter(sign(clone(good)), 1, producerKeyRecord(null, '0000000000000000')))],
  ['a producer key before the header', lines([producerKeyRecord(), ...sign(clone(good))])],
  ['a producer key after the end record', [...lines(sign(clone(good))), JSON.stringify(producerKeyRecord())]],
];

/** Every row with its options (jest would take a missing third argument for a `done` callback). */
const table = cases.map(([name, content, options]): [string, string[], Partial<BundleVerifierOptions>] => [name, content, options ?? {}]);

function pinnedAt(size: number): { origin: string; size: number; rootHash: Buffer } {
  const note = good.find((r) => r.type === 'checkpoint' && r.treeSize === size)!.note;
  const [, s, root] = note.slice(0, note.indexOf('\n\n') + 1).split('\n');
  return { origin: ORIGIN, size: Number(s), rootHash: Buffer.from(root, 'base64') };
}

const dir = mkdtempSync(path.join(tmpdir(), 'parallel-verifier-'));
let fileCount = 0;
function writeBundle(content: string[]): string {
  const file = path.join(dir, `bundle-${fileCount++}.ndjson`);
  writeFileSync(file, content.join('\n') + '\n');
  return file;
}

async function verify(file: string, checker: BatchChecker | null, options: Partial<BundleVerifierOptions> = {}, batch: BatchOptions = {}): Promise<BundleReport> {
  const v = new BundleVerifier({ verifiers, ...options });
  await verifyBundleFile(file, v, checker, batch);
  return v.finish();
}

/** The workers' part run in this thread, keys handed over the way the pool does. */
function inThreadChecker(size = 2, resolveLater = false): BatchChecker & { maxPending: number } {
  let sessions = 0;
  let pending = 0;
  const checker = {
    size,
    maxPending: 0,
    newSession: () => ++sessions,
    check(m: BatchMessage): Promise<BatchChecks> {
      const checks = checkEventLines(m.bytes, m.ends, m.org, new Map(m.keys));
      checker.maxPending = Math.max(checker.maxPending, ++pending);
      if (!resolveLater) return Promise.resolve(checks).finally(() => pending--);
      return new Promise((resolve) => setImmediate(() => (pending--, resolve(checks))));
    },
  };
  return checker;
}

const batchings: Array<[string, BatchOptions]> = [
  ['1 event per batch', { batchEvents: 1 }],
  ['2 events per batch', { batchEvents: 2 }],
  ['3 events per batch', { batchEvents: 3 }],
  ['5 events per batch', { batchEvents: 5 }],
  ['batches of 3,000 bytes (longer lines go alone)', { batchBytes: 3000 }],
  ['the default batches', {}],
];

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the batch path in this thread (checkEventLines) gives the reference report', () => {
  it.each(table)('%s', async (_name, content, options) => {
    const file = writeBundle(content);
    const reference = await verify(file, null, options);
    for (const [, batch] of batchings) {
      expect(await verify(file, inThreadChecker(), options, batch)).toStrictEqual(reference);
    }
  });

  it('gives the reference report for random damage, batch sizes and thread counts', async () => {
    const base = lines(insertAfter(sign(buildBundle(9, [2, 5]), 3), 1, producerKeyRecord()));
    const damage = fc.oneof(
      fc.record({ op: fc.constant('delete' as const), at: fc.nat() }),
      fc.record({ op: fc.constant('duplicate' as const), at: fc.nat() }),
      fc.record({ op: fc.constant('swap' as const), at: fc.nat() }),
      fc.record({ op: fc.constant('flip' as const), at: fc.nat(), pos: fc.nat() }),
      fc.record({ op: fc.constant('junk' as const), at: fc.nat(), text: fc.string() }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(damage, { maxLength: 4 }), fc.integer({ min: 1, max: 7 }), fc.integer({ min: 1, max: 3 }), async (ops, batchEvents, size) => {
        const l = [...base];
        for (const d of ops) {
          const i = d.at % l.length;
          if (d.op === 'delete') l.splice(i, 1);
          else if (d.op === 'duplicate') l.splice(i, 0, l[i]!);
          else if (d.op === 'swap' && i + 1 < l.length) [l[i], l[i + 1]] = [l[i + 1]!, l[i]!];
          else if (d.op === 'flip') {
            // Change one character of a line: a digit of a value, a letter of a hash, a quote…
            const s = l[i]!;
            const p = d.pos % s.length;
            l[i] = s.slice(0, p) + (s[p] === 'a' ? 'b' : 'a') + s.slice(p + 1);
          } else if (d.op === 'junk') l.splice(i, 0, d.text.replace(/\n/g, ' '));
        }
        const file = writeBundle(l);
        const reference = await verify(file, null);
        expect(await verify(file, inThreadChecker(size), {}, { batchEvents })).toStrictEqual(reference);
      }),
      { numRuns: 150 },
    );
  });

  it('keeps at most two batches per worker in flight (reading waits for the oldest result)', async () => {
    const file = writeBundle(lines(buildBundle(200, [50, 100, 150])));
    const checker = inThreadChecker(2, true);
    const report = await verify(file, checker, {}, { batchEvents: 1 });
    expect(report.ok).toBe(true);
    expect(report.events).toBe(200);
    expect(checker.maxPending).toBeGreaterThan(1);
    expect(checker.maxPending).toBeLessThanOrEqual(2 * 2 + 1);
  });
});

describe('worker threads', () => {
  const pools = new Map<number, VerifyPool>();
  beforeAll(() => {
    for (const size of [1, 2, 3]) pools.set(size, new VerifyPool(size));
  });
  afterAll(async () => {
    await Promise.all([...pools.values()].map((p) => p.close()));
  });

  it.each(table)('give the reference report with 1, 2 and 3 threads and odd batches: %s', async (_name, content, options) => {
    const file = writeBundle(content);
    const reference = await verify(file, null, options);
    for (const pool of pools.values()) {
      for (const [, batch] of batchings) {
        expect(await verify(file, pool, options, batch)).toStrictEqual(reference);
      }
    }
  });

  it('run from the CLI: --threads 2 prints what --threads 1 prints, for a good and a damaged bundle', async () => {
    const run = async (args: string[]) => {
      let out = '';
      const status = await main(args, { out: (l) => (out += `${l}\n`), err: (l) => (out += `${l}\n`) });
      return { status, out };
    };
    const goodFile = writeBundle(lines(buildBundle(30, [10, 20])));
    const badFile = writeBundle(lines(((b) => ((eventAt(b, 17).fields.action!.value = 'data.delete'), b))(buildBundle(30, [10, 20]))));
    for (const file of [goodFile, badFile]) {
      const one = await run(['bundle', file, '--key', key.verifierKey, '--threads', '1']);
      const two = await run(['bundle', file, '--key', key.verifierKey, '--threads', '2']);
      expect(two).toEqual(one);
      expect(one.status).toBe(file === goodFile ? 0 : 1);
    }
    expect((await run(['bundle', goodFile, '--key', key.verifierKey, '--threads', '0'])).out).toMatch(/--threads takes a number of threads from 1 to 256, got "0"/);
  });

  it.each([
    ['throws', `require('node:worker_threads').parentPort.on('message', () => { throw new Error('boom'); });`, /a verifier worker thread failed: boom/],
    ['exits', `require('node:worker_threads').parentPort.on('message', () => process.exit(3));`, /a verifier worker thread exited \(code 3\)/],
    ['answers nothing and exits', `setTimeout(() => process.exit(0), 10);`, /a verifier worker thread exited \(code 0\)/],
  ])('a worker that %s fails the verification, never passes it', async (name, code, error) => {
    const entry = path.join(dir, `worker-${name.replace(/\W+/g, '-')}.js`);
    writeFileSync(entry, code);
    const pool = new VerifyPool(2, entry);
    try {
      const file = writeBundle(lines(buildBundle(40, [10, 20, 30])));
      const v = new BundleVerifier({ verifiers });
      await expect(verifyBundleFile(file, v, pool, { batchEvents: 4 })).rejects.toThrow(error);
    } finally {
      await pool.close();
    }
  });
});
