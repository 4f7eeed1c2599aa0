/**
 * The compact range (the one incremental tree of the code base) against the literal RFC 9162
 * reference: after every append the root is MTH(D[0:size]), the frontier is the complete subtrees
 * of [0, size), every complete aligned subtree is visited exactly once with its MTH, and a range
 * resumed from a stored frontier goes on exactly as the original.
 */
import fc from 'fast-check';
import { CompactRange, EMPTY_ROOT, foldSubtrees, frontierLevels, frontierNodes, leafHash } from '../../src/ledger';
import { D, MAX, MTH } from '../helpers/rfc9162-reference';

const leaves = D.map((d) => leafHash(d));

describe('CompactRange', () => {
  it('matches MTH(D[0:n]) and visits every complete subtree once, for every n ≤ MAX', () => {
    const range = new CompactRange();
    expect(range.root().equals(EMPTY_ROOT)).toBe(true);
    const visited = new Map<string, Buffer>();
    for (let n = 0; n < MAX; n++) {
      range.append(leaves[n]!, (level, index, hash) => {
        const key = `${level}/${index}`;
        expect(visited.has(key)).toBe(false);
        visited.set(key, hash);
      });
      const size = n + 1;
      expect(range.size).toBe(size);
      expect(range.root().equals(MTH(0, size))).toBe(true);
      const frontier = range.frontier();
      const ids = frontierNodes(size);
      expect(frontier.map((h) => h.toString('hex'))).toEqual(ids.map((id) => MTH(id.index * 2 ** id.level, (id.index + 1) * 2 ** id.level).toString('hex')));
    }
    // Every complete aligned subtree of [0, MAX) and nothing else, each with its MTH.
    let expected = 0;
    for (let level = 0; 2 ** level <= MAX; level++) {
      for (let index = 0; (index + 1) * 2 ** level <= MAX; index++) {
        expected++;
        expect(visited.get(`${level}/${index}`)?.equals(MTH(index * 2 ** level, (index + 1) * 2 ** level))).toBe(true);
      }
    }
    expect(visited.size).toBe(expected);
  });

  it('resumes from a frontier exactly as if it had never stopped', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: MAX - 1 }), fc.integer({ min: 0, max: MAX - 1 }), (a, b) => {
        const [from, to] = a <= b ? [a, b] : [b, a];
        const whole = new CompactRange();
        leaves.slice(0, from).forEach((l) => whole.append(l));
        const resumed = new CompactRange(from, whole.frontier());
        const seen: string[] = [];
        leaves.slice(from, to).forEach((l) => resumed.append(l, (level, index) => seen.push(`${level}/${index}`)));
        expect(resumed.size).toBe(to);
        expect(resumed.root().equals(MTH(0, to))).toBe(true);
        // Only nodes that end in (from, to] are new.
        for (const s of seen) {
          const [level, index] = s.split('/').map(Number) as [number, number];
          const end = (index + 1) * 2 ** level;
          expect(end > from && end <= to).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('hands out copies of its frontier: changing what it returns or was given changes nothing', () => {
    const given = [MTH(0, 4), MTH(4, 5)];
    const range = new CompactRange(5, given);
    const root = range.root();
    given.reverse(); // the caller's array, reordered after construction
    const out = range.frontier();
    out.reverse();
    out.push(Buffer.alloc(32));
    expect(range.frontier()).toHaveLength(2);
    expect(range.root().equals(root)).toBe(true);
    expect(root.equals(MTH(0, 5))).toBe(true);
  });

  it('rejects a frontier that does not fit the size', () => {
    expect(() => new CompactRange(5, [leaves[0]!])).toThrow(RangeError); // 5 = 4 + 1: two hashes
    expect(() => new CompactRange(1, [Buffer.alloc(31)])).toThrow(RangeError);
    expect(() => new CompactRange(-1, [])).toThrow(RangeError);
  });

  it('names what does not fit in its errors', () => {
    expect(() => new CompactRange(5, [leaves[0]!])).toThrow(/^a tree of size 5 has a frontier of 2 hashes, got 1$/);
    expect(() => new CompactRange(1, [Buffer.alloc(31)])).toThrow(/^frontier\[0\] must be a 32-byte hash$/);
    expect(() => new CompactRange(-1, [])).toThrow(/^size must be a non-negative safe integer, got -1$/);
  });

  it('stops at 2^53 − 1 leaves: appending to a full range throws and changes nothing', () => {
    const full = new CompactRange(Number.MAX_SAFE_INTEGER, Array.from({ length: 53 }, () => leaves[0]!));
    expect(() => full.append(leaves[1]!)).toThrow(/^the tree size would pass 2\^53 − 1$/);
    expect(full.size).toBe(Number.MAX_SAFE_INTEGER);
    expect(full.frontier()).toHaveLength(53);
    const last = new CompactRange(Number.MAX_SAFE_INTEGER - 1, Array.from({ length: 52 }, () => leaves[0]!));
    last.append(leaves[1]!);
    expect(last.size).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('frontierLevels are the set bits of the size, highest first, past 2^32', () => {
    expect(frontierLevels(0)).toEqual([]);
    expect(frontierLevels(13)).toEqual([3, 2, 0]);
    expect(frontierLevels(2 ** 40 + 2 ** 33 + 1)).toEqual([40, 33, 0]);
    expect(frontierLevels(Number.MAX_SAFE_INTEGER)).toHaveLength(53);
    expect(foldSubtrees([]).equals(EMPTY_ROOT)).toBe(true);
  });
});
