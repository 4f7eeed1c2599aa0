/**
 * The fast tree code (storage model, plans, proofs, verification) checked against a reference
 * written straight from RFC 9162 §2.1 (test/helpers/rfc9162-reference.ts), for every size up to a few hundred, and at
 * sizes up to 2^53 − 1 on a virtual tree.
 */
import fc from 'fast-check';

import {
  EMPTY_ROOT,
  ProofShapeError,
  RootMismatchError,
  VerificationError,
  appendLeaves,
  frontierNodes,
  leafHash,
  nodeHash,
  planConsistency,
  planInclusion,
  planRoot,
  proveConsistency,
  proveConsistencyFrom,
  proveInclusion,
  proveInclusionFrom,
  rootAt,
  rootAtFrom,
  rootFromFrontier,
  rootFromInclusionProof,
  verifyConsistency,
  verifyInclusion,
} from '../../src/ledger';
import type { NodeId, ReadHashes } from '../../src/ledger';

import { D, MAX, MTH, PATH, PROOF } from '../helpers/rfc9162-reference';

// Tens of thousands of rejected proofs are thrown below; deep stack traces would dominate the run time.
const stackTraceLimit = Error.stackTraceLimit;
beforeAll(() => {
  Error.stackTraceLimit = 5;
});
afterAll(() => {
  Error.stackTraceLimit = stackTraceLimit;
});

// ---------------------------------------------------------------------------------------------
// Storage built with appendLeaves: one node map for the whole sweep.
// ---------------------------------------------------------------------------------------------

const key = (id: NodeId): string => `${id.level}/${id.index}`;
const hex = (bs: Buffer[]): string[] => bs.map((b) => b.toString('hex'));

/** Appends D in the given batch sizes; checks every AppendResult against the reference. */
function buildStore(batches: number[]): Map<string, Buffer> {
  const store = new Map<string, Buffer>();
  let size = 0;
  let frontier: Buffer[] = [];
  for (const count of batches) {
    const leaves = D.slice(size, size + count).map((d) => leafHash(d));
    const r = appendLeaves(size, frontier, leaves);
    const at = `append ${leaves.length} at ${size}`;
    check(r.size === size + leaves.length, () => `${at}: size ${r.size}`);
    check(r.root.equals(MTH(0, r.size)), () => `${at}: root differs from MTH`);
    check(r.root.equals(rootFromFrontier(r.frontier)), () => `${at}: root differs from the frontier's`);
    // The frontier is the hashes of frontierNodes(size), each the MTH of its range.
    check(sameHashes(r.frontier, frontierNodes(r.size).map(nodeMth)), () => `${at}: wrong frontier`);
    // Every node returned is new, complete after this append, not before, and hashes its range.
    for (const n of r.nodes) {
      const end = (n.index + 1) * 2 ** n.level;
      check(!store.has(key(n)), () => `${at}: node ${key(n)} returned twice`);
      check(end <= r.size && end > size, () => `${at}: node ${key(n)} was not completed by this append`);
      check(n.hash.equals(nodeMth(n)), () => `${at}: node ${key(n)} hash differs from MTH`);
      store.set(key(n), n.hash);
    }
    // …and nothing is missing: every complete aligned subtree of the new tree is stored.
    check(store.size === completeNodeCount(r.size), () => `${at}: ${store.size} nodes stored`);
    size = r.size;
    frontier = r.frontier;
  }
  return store;
}

function nodeMth(id: NodeId): Buffer {
  const width = 2 ** id.level;
  return MTH(id.index * width, (id.index + 1) * width);
}

/** Number of complete aligned subtrees of a tree of n leaves: n + n/2 + n/4 + … (floors). */
function completeNodeCount(n: number): number {
  let total = 0;
  for (let w = n; w > 0; w = Math.floor(w / 2)) total += w;
  return total;
}

function sameHashes(a: Buffer[], b: Buffer[]): boolean {
  return a.length === b.length && a.every((x, i) => x.equals(b[i]!));
}

/** Plain assertion for hot loops (jest's expect costs tens of microseconds a call). */
function check(ok: boolean, message: () => string): void {
  if (!ok) throw new Error(message());
}

/** Reads hashes for a tree of `size` leaves, failing on any node that is not complete at that size. */
function reader(store: Map<string, Buffer>, size: number): (ids: NodeId[]) => Buffer[] {
  return (ids) =>
    ids.map((id) => {
      check((id.index + 1) * 2 ** id.level <= size, () => `node ${key(id)} is not complete at size ${size}`);
      const h = store.get(key(id));
      if (!h) throw new Error(`node ${key(id)} is not stored`);
      return h;
    });
}

/** Random batch sizes summing to MAX. */
function randomBatches(seed: number): number[] {
  let s = seed;
  const rnd = (): number => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
  const out: number[] = [];
  let left = MAX;
  while (left > 0) {
    const c = Math.min(left, rnd() < 0.2 ? 0 : 1 + Math.floor(rnd() * (rnd() < 0.5 ? 5 : 70)));
    out.push(c);
    left -= c;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

describe('hashes (RFC 9162 §2.1.1)', () => {
  it('hashes the empty tree as SHA-256 of the empty string', () => {
    expect(EMPTY_ROOT.toString('hex')).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
    expect(rootFromFrontier([])).toEqual(EMPTY_ROOT);
    expect(rootAt(0, [])).toEqual(EMPTY_ROOT);
  });

  it('separates leaves from nodes with a one-byte prefix', () => {
    const a = Buffer.alloc(32, 1);
    const b = Buffer.alloc(32, 2);
    expect(leafHash(Buffer.concat([a, b])).equals(nodeHash(a, b))).toBe(false);
    expect(nodeHash(a, b).equals(nodeHash(b, a))).toBe(false);
  });
});

describe('appendLeaves', () => {
  it('matches MTH for every size 1..300 when appending one leaf at a time', () => {
    buildStore(Array.from({ length: MAX }, () => 1));
  });

  it('matches MTH and stores exactly the complete subtrees when appending in random batch sizes', () => {
    for (const seed of [1, 2, 3, 42, 1234]) buildStore(randomBatches(seed));
  });

  it('returns the same store whatever the batching (property)', () => {
    const reference = buildStore([MAX]);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 40 }), { maxLength: 60 }), (parts) => {
        const batches: number[] = [];
        let left = MAX;
        for (const p of parts) {
          const c = Math.min(p, left);
          batches.push(c);
          left -= c;
        }
        if (left > 0) batches.push(left);
        const store = buildStore(batches);
        expect([...store.entries()].sort().map(([k2, v]) => k2 + v.toString('hex'))).toEqual(
          [...reference.entries()].sort().map(([k2, v]) => k2 + v.toString('hex')),
        );
      }),
      { numRuns: 15 },
    );
  });

  it('appending nothing returns the same tree and no nodes', () => {
    const r1 = appendLeaves(
      0,
      [],
      D.slice(0, 5).map((d) => leafHash(d)),
    );
    const r2 = appendLeaves(r1.size, r1.frontier, []);
    expect(r2.size).toBe(5);
    expect(r2.nodes).toEqual([]);
    expect(r2.root).toEqual(r1.root);
  });

  it('rejects a frontier that does not fit the size, and hashes that are not 32 bytes', () => {
    const h = leafHash(Buffer.from('x'));
    expect(() => appendLeaves(3, [h], [h])).toThrow(RangeError);
    expect(() => appendLeaves(0, [h], [h])).toThrow(RangeError);
    expect(() => appendLeaves(1, [Buffer.alloc(31)], [h])).toThrow(RangeError);
    expect(() => appendLeaves(0, [], [Buffer.alloc(33)])).toThrow(RangeError);
    expect(() => appendLeaves(-1, [], [h])).toThrow(RangeError);
    expect(() => appendLeaves(1.5, [], [h])).toThrow(RangeError);
  });
});

describe('plans and proofs against the RFC reference, every size 1..300', () => {
  const store = buildStore(randomBatches(7));

  it('rootAt(n) = MTH(D[n]) for every n', () => {
    for (let n = 0; n <= MAX; n++) {
      expect(rootAt(n, reader(store, n)(planRoot(n))).equals(MTH(0, n))).toBe(true);
    }
  });

  it('proveInclusion(m, n) = PATH(m, D[n]) and verifies, for every n and every m < n', () => {
    let checked = 0;
    for (let n = 1; n <= MAX; n++) {
      const read = reader(store, n);
      const root = MTH(0, n);
      for (let m = 0; m < n; m++) {
        const proof = proveInclusion(m, n, read(planInclusion(m, n)));
        check(sameHashes(proof, PATH(m, 0, n)), () => `proveInclusion(${m}, ${n}) differs from PATH`);
        verifyInclusion(leafHash(D[m]!), m, n, proof, root);
        checked++;
      }
    }
    expect(checked).toBe((MAX * (MAX + 1)) / 2);
  });

  it('proveConsistency(m, n) = PROOF(m, D[n]) and verifies, for every n and every m ≤ n', () => {
    for (let n = 1; n <= MAX; n++) {
      const read = reader(store, n);
      const root = MTH(0, n);
      for (let m = 0; m <= n; m++) {
        const proof = proveConsistency(m, n, read(planConsistency(m, n)));
        check(
          sameHashes(proof, m === 0 || m === n ? [] : PROOF(m, n)),
          () => `proveConsistency(${m}, ${n}) differs from PROOF`,
        );
        verifyConsistency(m, n, proof, MTH(0, m), root);
      }
    }
  });

  it('the async wrappers read storage in one batch and agree with the sync functions', async () => {
    let calls = 0;
    const read: ReadHashes = (ids) => {
      calls++;
      return Promise.resolve(reader(store, MAX)(ids));
    };
    for (const [m, n] of [
      [0, 1],
      [5, 13],
      [127, 128],
      [200, 300],
      [299, 300],
    ] as const) {
      calls = 0;
      expect(hex(await proveInclusionFrom(read, m, n))).toEqual(hex(PATH(m, 0, n)));
      expect(calls).toBe(n > 1 ? 1 : 0);
      calls = 0;
      expect(hex(await proveConsistencyFrom(read, m, n))).toEqual(hex(m === 0 ? [] : PROOF(m, n)));
      expect(calls).toBeLessThanOrEqual(1);
      calls = 0;
      expect((await rootAtFrom(read, n)).equals(MTH(0, n))).toBe(true);
      expect(calls).toBe(1);
    }
    await expect(rootAtFrom(() => Promise.resolve([]), 5)).rejects.toThrow(RangeError);
  });

  it('rejects hash lists of the wrong length from storage as programmer errors', () => {
    const hashes = reader(store, 10)(planInclusion(3, 10));
    expect(() => proveInclusion(3, 10, hashes.slice(1))).toThrow(RangeError);
    expect(() => proveInclusion(3, 10, [...hashes, hashes[0]!])).toThrow(RangeError);
    expect(() => rootAt(10, [])).toThrow(RangeError);
    expect(() => proveConsistency(3, 10, [])).toThrow(RangeError);
  });
});

// ---------------------------------------------------------------------------------------------
// Tampering
// ---------------------------------------------------------------------------------------------

function flip(proof: Buffer[], i: number, bit: number): Buffer[] {
  return proof.map((p, j) => {
    if (j !== i) return p;
    const c = Buffer.from(p);
    c[bit >> 3]! ^= 1 << (bit & 7);
    return c;
  });
}

/** Nearby (index or old size, size) pairs that are still in range of the reference tree. */
function altered(m: number, n: number, max: number): Array<[number, number]> {
  const pairs: Array<[number, number]> = [
    [m - 1, n],
    [m + 1, n],
    [m ^ 2, n],
    [m, n + 1],
    [m, n - 1],
    [m, n * 2],
    [m, Math.floor(n / 2)],
  ];
  return pairs.filter(([mm, nn]) => (mm !== m || nn !== n) && mm >= 0 && nn >= 1 && nn <= max && mm < max);
}

function accepts(fn: () => void): boolean {
  try {
    fn();
    return true;
  } catch (e) {
    if (e instanceof VerificationError) return false;
    throw e;
  }
}

/** Asserts `fn` throws an instance of `cls` (a plain check: these run in hot loops). */
function throwsA(fn: () => void, cls: new (...args: never[]) => Error, what: string): void {
  try {
    fn();
  } catch (e) {
    check(e instanceof cls, () => `${what}: expected ${cls.name}, got ${String(e)}`);
    return;
  }
  throw new Error(`${what}: expected ${cls.name}, but it verified`);
}

/** Asserts `fn` throws a VerificationError (bad input) or, for impossible parameters, a RangeError. */
function expectRejected(fn: () => void, what: string): void {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  if (!(error instanceof VerificationError || error instanceof RangeError)) {
    const got = error === undefined ? 'success' : error instanceof Error ? error.message : 'a non-error';
    throw new Error(`${what}: expected rejection, got ${got}`);
  }
}

describe('tampered proofs are rejected', () => {
  const store = buildStore([MAX]);
  const other = Buffer.alloc(32, 0xab);

  it('inclusion: flipped bits, wrong index or size, extra, missing or reordered elements, wrong leaf or root', () => {
    for (let n = 1; n <= MAX; n += n < 70 ? 1 : 13) {
      const read = reader(store, n);
      const root = MTH(0, n);
      for (let m = 0; m < n; m += n < 40 ? 1 : 7) {
        const leaf = leafHash(D[m]!);
        const proof = proveInclusion(m, n, read(planInclusion(m, n)));
        const tag = `PATH(${m}, ${n})`;
        // One flipped bit in each element, at a position that varies over the sweep.
        proof.forEach((_, i) => {
          const bit = (m * 31 + n * 7 + i * 101) % 256;
          throwsA(() => verifyInclusion(leaf, m, n, flip(proof, i, bit), root), RootMismatchError, tag);
        });
        // Claims about other indexes or sizes, each with that size's genuine root: only a true claim
        // whose canonical proof happens to be this very proof may verify.
        for (const [mm, nn] of altered(m, n, MAX)) {
          if (mm >= nn) {
            throwsA(() => verifyInclusion(leaf, mm, nn, proof, MTH(0, nn)), RangeError, tag);
            continue;
          }
          const accepted = accepts(() => verifyInclusion(leaf, mm, nn, proof, MTH(0, nn)));
          const want = mm === m && sameHashes(proof, PATH(m, 0, nn));
          check(accepted === want, () => `${tag} claimed as (${mm}, ${nn}): accepted=${accepted}`);
        }
        throwsA(() => verifyInclusion(leaf, m, n, [...proof, other], root), ProofShapeError, tag);
        throwsA(() => verifyInclusion(leaf, m, n, [other, ...proof], root), ProofShapeError, tag);
        throwsA(() => verifyInclusion(leaf, m, n, [...proof, root], root), ProofShapeError, tag);
        if (proof.length > 0) {
          throwsA(() => verifyInclusion(leaf, m, n, proof.slice(0, -1), root), ProofShapeError, tag);
          throwsA(() => verifyInclusion(leaf, m, n, proof.slice(1), root), ProofShapeError, tag);
        }
        if (proof.length > 1) {
          const swapped = [proof[1]!, proof[0]!, ...proof.slice(2)];
          throwsA(() => verifyInclusion(leaf, m, n, swapped, root), RootMismatchError, tag);
        }
        throwsA(
          () => verifyInclusion(leafHash(Buffer.from('not a leaf')), m, n, proof, root),
          RootMismatchError,
          tag,
        );
        throwsA(() => verifyInclusion(leaf, m, n, proof, other), RootMismatchError, tag);
        throwsA(() => verifyInclusion(leaf, m, n, proof, EMPTY_ROOT), RootMismatchError, tag);
        throwsA(
          () => verifyInclusion(leaf, m, n, [...proof.slice(0, -1), Buffer.alloc(31)], root),
          ProofShapeError,
          tag,
        );
      }
    }
  });

  it('consistency: flipped bits, wrong sizes, extra or missing elements, wrong or swapped roots', () => {
    for (let n = 2; n <= MAX; n += n < 70 ? 1 : 11) {
      const read = reader(store, n);
      for (let m = 1; m < n; m += n < 40 ? 1 : 5) {
        const oldRoot = MTH(0, m);
        const newRoot = MTH(0, n);
        const proof = proveConsistency(m, n, read(planConsistency(m, n)));
        const tag = `PROOF(${m}, ${n})`;
        proof.forEach((_, i) => {
          const bit = (m * 31 + n * 7 + i * 101) % 256;
          throwsA(
            () => verifyConsistency(m, n, flip(proof, i, bit), oldRoot, newRoot),
            RootMismatchError,
            tag,
          );
        });
        // Other sizes with their genuine roots: every prefix is consistent, so exactly the claims whose
        // canonical proof is this very proof verify.
        for (const [mm, nn] of altered(m, n, MAX)) {
          if (mm > nn) {
            throwsA(() => verifyConsistency(mm, nn, proof, MTH(0, mm), MTH(0, nn)), RangeError, tag);
            continue;
          }
          const accepted = accepts(() => verifyConsistency(mm, nn, proof, MTH(0, mm), MTH(0, nn)));
          const canonical = mm === 0 || mm === nn ? [] : PROOF(mm, nn);
          check(
            accepted === sameHashes(proof, canonical),
            () => `${tag} claimed as (${mm}, ${nn}): accepted=${accepted}`,
          );
        }
        throwsA(() => verifyConsistency(m, n, [], oldRoot, newRoot), ProofShapeError, tag);
        throwsA(() => verifyConsistency(m, n, [...proof, other], oldRoot, newRoot), ProofShapeError, tag);
        throwsA(() => verifyConsistency(m, n, [...proof, oldRoot], oldRoot, newRoot), ProofShapeError, tag);
        throwsA(() => verifyConsistency(m, n, [other, ...proof], oldRoot, newRoot), VerificationError, tag);
        throwsA(
          () => verifyConsistency(m, n, [proof[0]!, ...proof], oldRoot, newRoot),
          VerificationError,
          tag,
        );
        throwsA(() => verifyConsistency(m, n, proof.slice(0, -1), oldRoot, newRoot), VerificationError, tag);
        throwsA(() => verifyConsistency(m, n, proof, other, newRoot), RootMismatchError, tag);
        throwsA(() => verifyConsistency(m, n, proof, oldRoot, other), RootMismatchError, tag);
        throwsA(() => verifyConsistency(m, n, proof, newRoot, oldRoot), RootMismatchError, tag);
      }
    }
  });

  it('trivial consistency: equal sizes need equal roots and an empty proof; size 0 needs the empty root', () => {
    const r5 = MTH(0, 5);
    verifyConsistency(5, 5, [], r5, r5);
    verifyConsistency(0, 5, [], EMPTY_ROOT, r5);
    verifyConsistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT);
    expect(() => verifyConsistency(5, 5, [], r5, MTH(0, 4))).toThrow(RootMismatchError);
    expect(() => verifyConsistency(5, 5, [r5], r5, r5)).toThrow(ProofShapeError);
    expect(() => verifyConsistency(0, 5, [r5], EMPTY_ROOT, r5)).toThrow(ProofShapeError);
    expect(() => verifyConsistency(0, 5, [], r5, r5)).toThrow(RootMismatchError);
  });

  it('inclusion in a one-leaf tree: the leaf hash is the root and the proof is empty', () => {
    const h = leafHash(Buffer.from('data'));
    verifyInclusion(h, 0, 1, [], h);
    expect(rootFromInclusionProof(h, 0, 1, [])).toEqual(h);
    expect(() => verifyInclusion(h, 0, 1, [], Buffer.alloc(0))).toThrow(ProofShapeError);
    expect(() => verifyInclusion(Buffer.alloc(0), 0, 1, [], h)).toThrow(ProofShapeError);
    expect(() => verifyInclusion(h, 0, 1, [h], h)).toThrow(ProofShapeError);
  });

  it('reports expected and calculated roots on a mismatch', () => {
    const proof = proveInclusion(2, 5, reader(store, 5)(planInclusion(2, 5)));
    try {
      verifyInclusion(leafHash(D[2]!), 2, 5, proof, other);
      throw new Error('verified');
    } catch (e) {
      expect(e).toBeInstanceOf(RootMismatchError);
      const err = e as RootMismatchError;
      expect(err.code).toBe('ROOT_MISMATCH');
      expect(err.expected).toEqual(other);
      expect(err.calculated).toEqual(MTH(0, 5));
    }
  });
});

describe('programmer errors are RangeErrors, distinct from bad input', () => {
  const h = Buffer.alloc(32);
  it.each([
    ['index = size', () => verifyInclusion(h, 3, 3, [], h)],
    ['index > size', () => planInclusion(4, 3)],
    ['size 0 inclusion', () => proveInclusion(0, 0, [])],
    ['negative index', () => rootFromInclusionProof(h, -1, 3, [])],
    ['negative size', () => planRoot(-1)],
    ['fractional size', () => frontierNodes(2.5)],
    ['NaN size', () => frontierNodes(NaN)],
    ['oldSize > newSize', () => verifyConsistency(5, 4, [], h, h)],
    ['oldSize > newSize (plan)', () => planConsistency(5, 4)],
    ['size beyond 2^53 - 1', () => planRoot(2 ** 53)],
    ['index beyond 2^53 - 1', () => planInclusion(2 ** 53, 2 ** 53 + 2)],
    [
      'append past 2^53 - 1',
      () => appendLeaves(Number.MAX_SAFE_INTEGER, frontierFor(Number.MAX_SAFE_INTEGER), [h]),
    ],
  ])('%s', (_name, fn) => {
    expect(fn).toThrow(RangeError);
    try {
      fn();
    } catch (e) {
      expect(e).not.toBeInstanceOf(VerificationError);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Big trees: plans are O(log n), and proofs verify up to 2^53 − 1 on a virtual tree.
// ---------------------------------------------------------------------------------------------

/**
 * A consistent virtual tree of any size: every leaf hashes to U[0] except leaf `special`. A
 * complete subtree without the special leaf at level L hashes to U[L] (U[L] = H(U[L−1], U[L−1]));
 * the one holding it is computed from its two children, so any node costs O(L).
 */
function virtualStore(special: number): (ids: NodeId[]) => Buffer[] {
  const U: Buffer[] = [leafHash(Buffer.from('uniform'))];
  for (let l = 1; l <= 53; l++) U.push(nodeHash(U[l - 1]!, U[l - 1]!));
  const S = leafHash(Buffer.from('special'));
  const hashOf = (level: number, index: number): Buffer => {
    const width = 2 ** level;
    const lo = index * width;
    if (special < lo || special >= lo + width) return U[level]!;
    if (level === 0) return S;
    return nodeHash(hashOf(level - 1, 2 * index), hashOf(level - 1, 2 * index + 1));
  };
  return (ids) => ids.map((id) => hashOf(id.level, id.index));
}

function frontierFor(size: number): Buffer[] {
  return virtualStore(-1)(frontierNodes(size));
}

const log2ceil = (n: number): number => (n <= 1 ? 0 : Math.ceil(Math.log2(n)));

describe('big trees', () => {
  const bigSize = fc.oneof(
    fc.integer({ min: 1, max: 2 ** 40 }),
    fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    fc.constantFrom(2 ** 32, 2 ** 32 + 1, 2 ** 32 - 1, 2 ** 40, 2 ** 52, 2 ** 53 - 1, 2 ** 31, 3 * 2 ** 31),
  );

  it('plans are at most 2*ceil(log2 n)+2 nodes, all complete at that size (sizes up to 2^40 and beyond)', () => {
    fc.assert(
      fc.property(
        bigSize,
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (n, a, b) => {
          const bound = 2 * log2ceil(n) + 2;
          const m = Math.min(n - 1, Math.floor(a * n));
          const old = Math.min(n, Math.floor(b * (n + 1)));
          for (const plan of [planInclusion(m, n), planConsistency(old, n), planRoot(n)]) {
            check(plan.length <= bound, () => `plan of ${plan.length} nodes for size ${n}`);
            for (const id of plan) {
              // Exact arithmetic: the node ends at or before n.
              const end = (BigInt(id.index) + 1n) * 2n ** BigInt(id.level);
              check(
                Number.isSafeInteger(id.index) && end <= BigInt(n),
                () => `${key(id)} is incomplete at ${n}`,
              );
            }
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('frontier nodes are the set bits of the size, largest first, for 2^53 - 1', () => {
    const ids = frontierNodes(Number.MAX_SAFE_INTEGER);
    expect(ids).toHaveLength(53);
    let start = 0n;
    ids.forEach((id, i) => {
      expect(id.level).toBe(52 - i);
      expect(BigInt(id.index) * 2n ** BigInt(id.level)).toBe(start);
      start += 2n ** BigInt(id.level);
    });
    expect(start).toBe(BigInt(Number.MAX_SAFE_INTEGER));
  });

  it('proofs verify at sizes up to 2^53 - 1 (virtual tree), and a wrong index fails', () => {
    fc.assert(
      fc.property(
        bigSize,
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (n, a, b) => {
          const m = Math.min(n - 1, Math.floor(a * n));
          const read = virtualStore(m);
          const root = rootAt(n, read(planRoot(n)));
          const leaf = read([{ level: 0, index: m }])[0]!;
          const proof = proveInclusion(m, n, read(planInclusion(m, n)));
          verifyInclusion(leaf, m, n, proof, root);
          if (n > 1)
            expectRejected(() => verifyInclusion(leaf, m === 0 ? 1 : m - 1, n, proof, root), 'index');

          const old = Math.max(1, Math.min(n, Math.floor(b * (n + 1))));
          const oldRoot = rootAt(old, read(planRoot(old)));
          const cproof = proveConsistency(old, n, read(planConsistency(old, n)));
          verifyConsistency(old, n, cproof, oldRoot, root);
          if (cproof.length > 0) {
            expect(() => verifyConsistency(old, n, flip(cproof, 0, 9), oldRoot, root)).toThrow(
              VerificationError,
            );
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('appendLeaves continues a huge tree up to exactly 2^53 - 1', () => {
    const u = virtualStore(-1);
    const start = Number.MAX_SAFE_INTEGER - 3;
    const r = appendLeaves(start, frontierFor(start), u([0, 1, 2].map((i) => ({ level: 0, index: i }))));
    expect(r.size).toBe(Number.MAX_SAFE_INTEGER);
    expect(r.root).toEqual(rootAt(r.size, u(planRoot(r.size))));
    expect(hex(r.frontier)).toEqual(hex(u(frontierNodes(r.size))));
    // Leaves 2^53−4, 2^53−3 and 2^53−2: the first two are siblings and complete a level-1 node,
    // the last one stays alone on the frontier.
    expect(r.nodes.map((n) => [n.level, n.index])).toEqual([
      [0, start],
      [0, start + 1],
      [1, (start + 2) / 2 - 1],
      [0, start + 2],
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// What a rejection says. A verifier's failure reason (ProofShapeError, RootMismatchError) is shown
// to auditors, so its text is pinned; a programmer error (RangeError) must at least name the
// offending argument and value. Also the error kinds where a wrong kind was the only symptom.
// ---------------------------------------------------------------------------------------------

describe('rejection reasons and kinds', () => {
  const store = buildStore([8]);
  const h = Buffer.alloc(32);
  const short = Buffer.alloc(31);
  const other = Buffer.alloc(32, 0xab);
  const leaf2 = leafHash(D[2]!);
  const incl = proveInclusion(2, 5, reader(store, 5)(planInclusion(2, 5)));
  const cons = proveConsistency(3, 8, reader(store, 8)(planConsistency(3, 8)));
  const [r3, r5, r8] = [MTH(0, 3), MTH(0, 5), MTH(0, 8)];

  it('inclusion proofs: which input is malformed, too long, too short, or the root that differs', () => {
    expect(incl.length).toBe(3);
    const bad = [incl[0]!, short, incl[2]!];
    expect(() => verifyInclusion(leaf2, 2, 5, bad, r5)).toThrow(/^proof\[1\] must be a 32-byte hash$/);
    expect(() => verifyInclusion(short, 2, 5, incl, r5)).toThrow(/^leaf hash must be a 32-byte hash$/);
    expect(() => verifyInclusion(leaf2, 2, 5, incl, short)).toThrow(/^root must be a 32-byte hash$/);
    expect(() => verifyInclusion(leaf2, 2, 5, [...incl, h], r5)).toThrow(
      /^inclusion proof is too long for index 2 in size 5$/,
    );
    expect(() => verifyInclusion(leaf2, 2, 5, incl.slice(0, -1), r5)).toThrow(
      /^inclusion proof is too short for index 2 in size 5$/,
    );
    expect(() => verifyInclusion(leaf2, 2, 5, incl, other)).toThrow(/^root mismatch: expected q6ur/);
  });

  it('consistency proofs: which input is malformed, wrong length, or which root differs', () => {
    verifyConsistency(3, 8, cons, r3, r8);
    const bad = cons.map((c, i) => (i === 1 ? short : c));
    expect(() => verifyConsistency(3, 8, bad, r3, r8)).toThrow(ProofShapeError);
    expect(() => verifyConsistency(3, 8, bad, r3, r8)).toThrow(/^proof\[1\] must be a 32-byte hash$/);
    expect(() => verifyConsistency(3, 8, cons, short, r8)).toThrow(/^old root must be a 32-byte hash$/);
    expect(() => verifyConsistency(3, 8, cons, r3, short)).toThrow(/^new root must be a 32-byte hash$/);
    expect(() => verifyConsistency(5, 5, [r5], r5, r5)).toThrow(/^consistency proof from size 5 to 5 must be empty$/);
    expect(() => verifyConsistency(0, 5, [], r5, r5)).toThrow(/^old root \(empty tree\) mismatch: expected /);
    expect(() => verifyConsistency(5, 5, [], r5, r3)).toThrow(/^new root \(same size\) mismatch: expected /);
    expect(() => verifyConsistency(3, 5, [], r3, r5)).toThrow(/^consistency proof is empty$/);
    expect(() => verifyConsistency(3, 8, [...cons, h], r3, r8)).toThrow(
      /^consistency proof is too long for sizes 3 → 8$/,
    );
    // A truncated proof is a shape error, not a root mismatch.
    expect(() => verifyConsistency(3, 8, cons.slice(0, -1), r3, r8)).toThrow(ProofShapeError);
    expect(() => verifyConsistency(3, 8, cons.slice(0, -1), r3, r8)).toThrow(
      /^consistency proof is too short for sizes 3 → 8$/,
    );
    expect(() => verifyConsistency(3, 8, cons, other, r8)).toThrow(/^old root mismatch: expected /);
    expect(() => verifyConsistency(3, 8, cons, r3, other)).toThrow(/^new root mismatch: expected /);
  });

  it.each([
    ['negative size', () => frontierNodes(-1), /^size must be a non-negative integer, got -1$/],
    ['size past 2^53 - 1', () => planRoot(2 ** 53), /^size 9007199254740992 exceeds Number\.MAX_SAFE_INTEGER/],
    ['index = size', () => planInclusion(4, 3), /^index 4 is out of range for a tree of size 3$/],
    ['short frontier hash', () => rootFromFrontier([h, short]), /^frontier\[1\] must be a 32-byte hash$/],
    ['append at a negative size', () => appendLeaves(-1, [], []), /^size must be a non-negative integer/],
    [
      'append past 2^53 - 1',
      () => appendLeaves(Number.MAX_SAFE_INTEGER, frontierFor(Number.MAX_SAFE_INTEGER), [h]),
      /^new size 9007199254740992 exceeds/,
    ],
    ['short leaf hash', () => appendLeaves(0, [], [h, short]), /^leafHashes\[1\] must be a 32-byte hash$/],
    ['too few stored hashes', () => proveInclusion(2, 5, []), /^inclusion proof needs 3 stored hashes, got 0$/],
    ['no stored hash list', () => proveInclusion(2, 5, null as never), /^inclusion proof needs 3 stored hashes, got undefined$/],
    ['short stored hash', () => rootAt(1, [short]), /^hashes\[0\] must be a 32-byte hash$/],
    ['too few for consistency', () => proveConsistency(3, 8, []), /^consistency proof needs \d+ stored hashes, got 0$/],
    ['rootAt at a negative size', () => rootAt(-1, []), /^size must be a non-negative integer/],
    ['too few for a root', () => rootAt(3, []), /^root needs 2 stored hashes, got 0$/],
    ['oldSize > newSize', () => planConsistency(5, 4), /^oldSize 5 is larger than newSize 4$/],
    ['inclusion in a tree of negative size', () => planInclusion(0, -1), /^size must be a non-negative integer, got -1$/],
    ['inclusion of a negative index', () => planInclusion(-1, 3), /^index must be a non-negative integer, got -1$/],
    ['consistency from a negative size', () => planConsistency(-1, 3), /^oldSize must be a non-negative integer, got -1$/],
    ['consistency to a fractional size', () => planConsistency(0, 2.5), /^newSize must be a non-negative integer, got 2\.5$/],
  ])('programmer error names the argument: %s', (_name, fn, message) => {
    expect(fn).toThrow(RangeError);
    expect(fn).toThrow(message);
  });

  it('storage returning the wrong number of hashes, or none, is reported as such', async () => {
    const one: ReadHashes = async () => [h];
    const none = (async () => null) as unknown as ReadHashes;
    await expect(proveInclusionFrom(one, 2, 5)).rejects.toThrow(/^readHashes returned 1 hashes for 3 nodes$/);
    await expect(proveInclusionFrom(none, 2, 5)).rejects.toThrow(RangeError);
    await expect(proveInclusionFrom(none, 2, 5)).rejects.toThrow(/^readHashes returned undefined hashes for 3 nodes$/);
  });
});
