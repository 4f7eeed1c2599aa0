/**
 * RFC 9162 §2.1 Merkle tree math, storage-agnostic, in the style of Go's golang.org/x/mod/sumdb/tlog.
 *
 * ## Storage model
 * Storage keeps the hash of every *complete, aligned* subtree: node (level L, index i) covers the
 * leaves [i·2^L, (i+1)·2^L); level 0 holds the leaf hashes. Such a node, once complete, never
 * changes as the log grows, so it is written once ({@link appendLeaves} returns every node an append
 * completes) and read many times. Any other hash the RFC needs (the root of a tree whose size is not
 * a power of two, or a right-edge subtree of it) is recomputed from O(log n) stored nodes.
 *
 * ## Plan, read, compute
 * Proofs are built in three steps so storage is read in ONE batch: `plan*` lists the stored nodes
 * needed, the caller reads their hashes in that order, and `prove*`/`rootAt` computes the result.
 * The `*From` wrappers do all three over a {@link ReadHashes} callback.
 *
 * ## Numbers
 * Sizes and indexes are JavaScript `number`s, exact up to 2^53. Every public function checks that
 * they are non-negative safe integers (≤ `Number.MAX_SAFE_INTEGER`) and throws `RangeError`
 * otherwise. Bit arithmetic is done with division by powers of two and `Math.clz32` on 32-bit
 * halves, never with `>>`/`&` on the whole value (those truncate to 32 bits).
 *
 * ## Errors
 * `RangeError`/`TypeError`: the caller broke a precondition (index ≥ size, negative size, a hash
 * list of the wrong length from storage). {@link VerificationError} subclasses: the proof or root
 * given for verification is wrong.
 */
import { CompactRange, foldSubtrees } from './compact-range';
import { ProofShapeError, RootMismatchError } from './errors';
import { EMPTY_ROOT, HASH_SIZE, nodeHash } from './hash';

/** A stored tree node: (level L, index i) covers leaves [i·2^L, (i+1)·2^L); level 0 = leaf hashes. */
export type NodeId = { level: number; index: number };

/** Result of {@link appendLeaves}. */
export interface AppendResult {
  /** The new tree size. */
  size: number;
  /** The new root hash, MTH(D[size]). */
  root: Buffer;
  /** The new frontier: the complete subtrees decomposing [0, size), largest (leftmost) first. */
  frontier: Buffer[];
  /** Every node completed by this append, to be stored: the new leaves and each new interior node. */
  nodes: Array<NodeId & { hash: Buffer }>;
}

/** Reads stored node hashes, in the order asked, in one batch. */
export type ReadHashes = (ids: NodeId[]) => Promise<Buffer[]>;

// ---------------------------------------------------------------------------------------------
// Number helpers (exact for 0 ≤ n ≤ 2^53 − 1)
// ---------------------------------------------------------------------------------------------

const TWO_32 = 2 ** 32;

/** Throws RangeError unless `n` is an integer in [0, Number.MAX_SAFE_INTEGER]. */
function checkSize(n: number, name: string): void {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) {
    throw new RangeError(`${name} must be a non-negative integer, got ${String(n)}`);
  }
  if (n > Number.MAX_SAFE_INTEGER) {
    throw new RangeError(`${name} ${n} exceeds Number.MAX_SAFE_INTEGER (indexes are exact only below 2^53)`);
  }
}

/** Throws RangeError unless 0 ≤ index < size. */
function checkIndex(index: number, size: number): void {
  checkSize(size, 'size');
  checkSize(index, 'index');
  if (index >= size) throw new RangeError(`index ${index} is out of range for a tree of size ${size}`);
}

/** Number of bits needed to write n (0 for 0): floor(log2 n) + 1, computed exactly. */
function bitLength(n: number): number {
  return n < TWO_32 ? 32 - Math.clz32(n) : 64 - Math.clz32(Math.floor(n / TWO_32));
}

/** Number of trailing zero bits of n > 0. */
function trailingZeros(n: number): number {
  const lo = n % TWO_32;
  const ctz32 = (x: number): number => 31 - Math.clz32(x & -x);
  return lo !== 0 ? ctz32(lo) : 32 + ctz32(Math.floor(n / TWO_32));
}

/** n with its lowest bit dropped: n >> 1 without 32-bit truncation. */
function half(n: number): number {
  return Math.floor(n / 2);
}

/** Whether n > 0 is an exact power of two. */
function isPowerOfTwo(n: number): boolean {
  return n > 0 && 2 ** trailingZeros(n) === n;
}

/*
 * RFC 9162 §2.1.1 splits a list of n > 1 leaves at k, "the largest power of two smaller than n":
 * MTH(D[n]) = HASH(0x01 || MTH(D[0:k]) || MTH(D[k:n])). The left part D[0:k] is always a complete
 * (perfect) subtree of 2^j leaves; only the right part can be ragged. k is 2 raised to one less
 * than the bit length of n − 1: for n = 5 (n − 1 = 0b100) that is 4, for n = 4 (0b11) it is 2.
 */
function splitPoint(n: number): number {
  return 2 ** (bitLength(n - 1) - 1);
}

// ---------------------------------------------------------------------------------------------
// Tree geometry
// ---------------------------------------------------------------------------------------------

/*
 * Decomposing a range of leaves [lo, hi) into stored nodes (a "compact range"): repeatedly take
 * the largest complete aligned subtree that starts at lo and fits before hi. It may be no larger
 * than the alignment of lo (2^L must divide lo, i.e. L ≤ trailing zeros of lo; any L if lo = 0)
 * and no larger than the space left (2^L ≤ hi − lo). For the ranges the RFC recursion produces,
 * lo is 0 or a multiple of a power of two ≥ hi − lo, so the pieces are exactly the set bits of
 * hi − lo from the highest down: [0, 13) = 8 + 4 + 1 leaves = nodes (3,0), (2,2), (0,12).
 * At most bitLength(hi − lo) pieces for such ranges.
 */
function subtreeNodes(lo: number, hi: number): NodeId[] {
  const ids: NodeId[] = [];
  while (lo < hi) {
    const bySize = bitLength(hi - lo) - 1;
    const level = lo === 0 ? bySize : Math.min(bySize, trailingZeros(lo));
    const width = 2 ** level;
    ids.push({ level, index: lo / width });
    lo += width;
  }
  return ids;
}

/**
 * The stored nodes that make up the frontier of a tree of `size` leaves: the complete subtrees
 * decomposing [0, size), largest (leftmost) first, one per set bit of `size`.
 */
export function frontierNodes(size: number): NodeId[] {
  checkSize(size, 'size');
  return subtreeNodes(0, size);
}

/**
 * The root of a tree from its frontier (RFC 9162 §2.1.1): the frontier folded right to left with
 * {@link nodeHash}; {@link EMPTY_ROOT} for the empty tree.
 */
export function rootFromFrontier(frontier: Buffer[]): Buffer {
  frontier.forEach((h, i) => checkStoredHash(h, `frontier[${i}]`));
  return foldSubtrees(frontier);
}

/**
 * Appends leaf hashes to a tree of `size` leaves whose frontier is `frontier` (the hashes of
 * {@link frontierNodes}(size), in that order). Pure, O(k + log n) for k new leaves.
 * @returns the new size, root and frontier, and every node completed by the append (leaves at
 *   level 0 and interior nodes), in the order they were completed.
 * @throws RangeError if the frontier does not fit `size`, a hash is not 32 bytes or the new size passes 2^53 − 1.
 */
export function appendLeaves(size: number, frontier: Buffer[], leafHashes: Buffer[]): AppendResult {
  checkSize(size, 'size');
  checkSize(size + leafHashes.length, 'new size');
  // The compact range checks the frontier against the size (one 32-byte hash per set bit).
  const range = new CompactRange(size, frontier);
  const nodes: AppendResult['nodes'] = [];
  const store = (level: number, index: number, hash: Buffer) => nodes.push({ level, index, hash });
  leafHashes.forEach((lh, i) => {
    checkStoredHash(lh, `leafHashes[${i}]`);
    range.append(lh, store);
  });
  return { size: range.size, root: range.root(), frontier: range.frontier(), nodes };
}

// ---------------------------------------------------------------------------------------------
// Proof planning and building
// ---------------------------------------------------------------------------------------------

/** A list of RFC subtrees [lo, hi) whose hashes form a proof, in proof order. */
type Ranges = Array<readonly [number, number]>;

/*
 * RFC 9162 §2.1.3.1 PATH(m, D[n]): for n > 1 with split k, PATH(m, D[n]) = PATH(m, D[0:k]) :
 * MTH(D[k:n]) when m < k, else PATH(m − k, D[k:n]) : MTH(D[0:k]). Walking from the root down, each
 * step keeps the half holding leaf m and records the other half, the sibling; the path lists the
 * siblings from the leaf up, i.e. in reverse order of the walk. A left sibling is always a complete
 * subtree; only a right sibling on the right edge of the tree (hi = size) can be ragged, and once
 * the walk turns left it never meets the right edge again, so at most one sibling is ragged.
 */
function inclusionRanges(index: number, size: number): Ranges {
  const ranges: Array<readonly [number, number]> = [];
  let lo = 0;
  let hi = size;
  while (hi - lo > 1) {
    const k = lo + splitPoint(hi - lo);
    if (index < k) {
      ranges.push([k, hi]);
      hi = k;
    } else {
      ranges.push([lo, k]);
      lo = k;
    }
  }
  return ranges.reverse();
}

/*
 * RFC 9162 §2.1.4.1 PROOF(m, D[n]) = SUBPROOF(m, D[n], true), where for m < n with split k:
 * SUBPROOF(m, D[n], b) = SUBPROOF(m, D[0:k], b) : MTH(D[k:n]) when m ≤ k, and
 * SUBPROOF(m − k, D[k:n], false) : MTH(D[0:k]) when m > k; it ends when m equals the subtree size,
 * with {} if b (the old tree is the left part of the new tree, its root is already known) or
 * {MTH(D[m])} otherwise. In absolute leaf positions the old tree ends at `oldSize` throughout; the
 * walk narrows [lo, hi) until hi = oldSize, recording siblings, and the proof is the final subtree
 * (if not b) followed by the siblings from the deepest up.
 * Sizes 0 and oldSize = newSize give the empty proof, as in transparency-dev/merkle.
 */
function consistencyRanges(oldSize: number, newSize: number): Ranges {
  const ranges: Array<readonly [number, number]> = [];
  if (oldSize === 0 || oldSize === newSize) return ranges;
  let lo = 0;
  let hi = newSize;
  let b = true;
  // Invariant lo < oldSize ≤ hi, so while oldSize < hi the subtree has at least 2 leaves.
  while (oldSize < hi) {
    const k = lo + splitPoint(hi - lo);
    if (oldSize <= k) {
      ranges.push([k, hi]);
      hi = k;
    } else {
      ranges.push([lo, k]);
      lo = k;
      b = false;
    }
  }
  if (!b) ranges.push([lo, hi]);
  return ranges.reverse();
}

/** The stored nodes behind a list of ranges, and how many of them each range folds. */
function planRanges(ranges: Ranges): { ids: NodeId[]; groups: number[] } {
  const ids: NodeId[] = [];
  const groups: number[] = [];
  for (const [lo, hi] of ranges) {
    const part = subtreeNodes(lo, hi);
    ids.push(...part);
    groups.push(part.length);
  }
  return { ids, groups };
}

/**
 * Hashes each range from its stored nodes (hashes in plan order): an RFC subtree D[lo:hi] is its
 * compact range's pieces folded from the right (compact-range.ts).
 */
function computeRanges(plan: { ids: NodeId[]; groups: number[] }, hashes: Buffer[], what: string): Buffer[] {
  if (!Array.isArray(hashes) || hashes.length !== plan.ids.length) {
    throw new RangeError(`${what} needs ${plan.ids.length} stored hashes, got ${hashes?.length}`);
  }
  hashes.forEach((h, i) => checkStoredHash(h, `hashes[${i}]`));
  const out: Buffer[] = [];
  let at = 0;
  for (const count of plan.groups) {
    out.push(foldSubtrees(hashes.slice(at, at + count)));
    at += count;
  }
  return out;
}

/** The stored nodes needed for the inclusion proof of leaf `index` in a tree of `size` (O(log n)). */
export function planInclusion(index: number, size: number): NodeId[] {
  checkIndex(index, size);
  return planRanges(inclusionRanges(index, size)).ids;
}

/**
 * The RFC 9162 §2.1.3.1 audit path PATH(index, D[size]) from the hashes of {@link planInclusion},
 * in plan order. Leaf-side first, as {@link verifyInclusion} expects.
 */
export function proveInclusion(index: number, size: number, hashes: Buffer[]): Buffer[] {
  checkIndex(index, size);
  return computeRanges(planRanges(inclusionRanges(index, size)), hashes, 'inclusion proof');
}

/** The stored nodes needed for the consistency proof between sizes `oldSize` ≤ `newSize` (O(log n)). */
export function planConsistency(oldSize: number, newSize: number): NodeId[] {
  checkSizes(oldSize, newSize);
  return planRanges(consistencyRanges(oldSize, newSize)).ids;
}

/**
 * The RFC 9162 §2.1.4.1 consistency proof PROOF(oldSize, D[newSize]) from the hashes of
 * {@link planConsistency}, in plan order. Empty when oldSize is 0 or equals newSize.
 */
export function proveConsistency(oldSize: number, newSize: number, hashes: Buffer[]): Buffer[] {
  checkSizes(oldSize, newSize);
  return computeRanges(planRanges(consistencyRanges(oldSize, newSize)), hashes, 'consistency proof');
}

/** The stored nodes needed for the root of the tree of the first `size` leaves (its frontier). */
export function planRoot(size: number): NodeId[] {
  return frontierNodes(size);
}

/** MTH(D[size]) (RFC 9162 §2.1.1) from the hashes of {@link planRoot}, in plan order. */
export function rootAt(size: number, hashes: Buffer[]): Buffer {
  checkSize(size, 'size');
  const plan = subtreeNodes(0, size);
  const [root] = computeRanges({ ids: plan, groups: [plan.length] }, hashes, 'root');
  return root!;
}

/** Plans, reads (one batch) and builds the inclusion proof of leaf `index` in a tree of `size`. */
export async function proveInclusionFrom(read: ReadHashes, index: number, size: number): Promise<Buffer[]> {
  return proveInclusion(index, size, await readPlanned(read, planInclusion(index, size)));
}

/** Plans, reads (one batch) and builds the consistency proof between `oldSize` and `newSize`. */
export async function proveConsistencyFrom(
  read: ReadHashes,
  oldSize: number,
  newSize: number,
): Promise<Buffer[]> {
  return proveConsistency(oldSize, newSize, await readPlanned(read, planConsistency(oldSize, newSize)));
}

/** Plans, reads (one batch) and computes the root of the tree of the first `size` leaves. */
export async function rootAtFrom(read: ReadHashes, size: number): Promise<Buffer> {
  return rootAt(size, await readPlanned(read, planRoot(size)));
}

async function readPlanned(read: ReadHashes, ids: NodeId[]): Promise<Buffer[]> {
  if (ids.length === 0) return [];
  const hashes = await read(ids);
  if (!Array.isArray(hashes) || hashes.length !== ids.length) {
    throw new RangeError(`readHashes returned ${hashes?.length} hashes for ${ids.length} nodes`);
  }
  return hashes;
}

function checkSizes(oldSize: number, newSize: number): void {
  checkSize(oldSize, 'oldSize');
  checkSize(newSize, 'newSize');
  if (oldSize > newSize) throw new RangeError(`oldSize ${oldSize} is larger than newSize ${newSize}`);
}

/** Stored hashes come from our own storage: a wrong length is a programmer/storage error. */
function checkStoredHash(h: unknown, what: string): void {
  if (!(h instanceof Uint8Array) || h.length !== HASH_SIZE) {
    throw new RangeError(`${what} must be a ${HASH_SIZE}-byte hash`);
  }
}

// ---------------------------------------------------------------------------------------------
// Verification (RFC 9162 §2.1.3.2, §2.1.4.2), written as the RFC's step lists
// ---------------------------------------------------------------------------------------------

/** Proof elements and claimed roots are untrusted input: a wrong length is a {@link ProofShapeError}. */
function checkInputHash(h: unknown, what: string): asserts h is Buffer {
  if (!(h instanceof Uint8Array) || h.length !== HASH_SIZE) {
    throw new ProofShapeError(`${what} must be a ${HASH_SIZE}-byte hash`);
  }
}

/**
 * Recomputes the root from a leaf hash and its audit path (RFC 9162 §2.1.3.2 steps 1–4 and the
 * sn = 0 check of step 5), without comparing it to anything.
 * @throws RangeError if index ≥ size; ProofShapeError if the proof has the wrong length or a bad element.
 */
export function rootFromInclusionProof(
  leafHash: Buffer,
  index: number,
  size: number,
  proof: Buffer[],
): Buffer {
  checkIndex(index, size); // step 1
  checkInputHash(leafHash, 'leaf hash');
  proof.forEach((p, i) => checkInputHash(p, `proof[${i}]`));

  /*
   * fn is the leaf's position and sn the last leaf's position at the current level. While fn is
   * a right child (odd) the sibling p is on the left; while fn = sn the node is the last one of
   * its level, so it has no right sibling at this level and is carried up unchanged (right-shift
   * until it becomes a right child or reaches the left edge) before meeting its left sibling p.
   * Otherwise p is the right sibling. sn reaching 0 means the root is reached.
   */
  let fn = index; // step 2
  let sn = size - 1;
  let r = leafHash; // step 3
  for (const p of proof) {
    // step 4
    if (sn === 0) throw new ProofShapeError(`inclusion proof is too long for index ${index} in size ${size}`); // 4a
    if (fn % 2 === 1 || fn === sn) {
      // 4b
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn); // 4c
    sn = half(sn);
  }
  if (sn !== 0) throw new ProofShapeError(`inclusion proof is too short for index ${index} in size ${size}`); // step 5
  return r;
}

/**
 * Verifies that `leafHash` is leaf `index` of the tree of `size` leaves with root `root`
 * (RFC 9162 §2.1.3.2).
 * @throws RangeError if index ≥ size or a size is not a safe non-negative integer;
 *   ProofShapeError for a proof of the wrong length; RootMismatchError if it leads to another root.
 */
export function verifyInclusion(
  leafHash: Buffer,
  index: number,
  size: number,
  proof: Buffer[],
  root: Buffer,
): void {
  checkIndex(index, size);
  checkInputHash(root, 'root');
  const calculated = rootFromInclusionProof(leafHash, index, size, proof);
  if (!calculated.equals(root)) throw new RootMismatchError(root, calculated);
}

/**
 * Verifies that the tree of `oldSize` leaves with root `oldRoot` is a prefix of the tree of
 * `newSize` leaves with root `newRoot` (RFC 9162 §2.1.4.2). For oldSize = newSize the proof must be
 * empty and the roots equal; for oldSize = 0 the proof must be empty and oldRoot the empty root.
 * @throws RangeError if oldSize > newSize or a size is not a safe non-negative integer;
 *   ProofShapeError for a proof of the wrong length; RootMismatchError if a root does not match.
 */
export function verifyConsistency(
  oldSize: number,
  newSize: number,
  proof: Buffer[],
  oldRoot: Buffer,
  newRoot: Buffer,
): void {
  checkSizes(oldSize, newSize);
  checkInputHash(oldRoot, 'old root');
  checkInputHash(newRoot, 'new root');
  proof.forEach((p, i) => checkInputHash(p, `proof[${i}]`));

  if (oldSize === newSize || oldSize === 0) {
    if (proof.length !== 0)
      throw new ProofShapeError(`consistency proof from size ${oldSize} to ${newSize} must be empty`);
    if (oldSize === 0) {
      if (!oldRoot.equals(EMPTY_ROOT))
        throw new RootMismatchError(oldRoot, EMPTY_ROOT, 'old root (empty tree)');
    } else if (!oldRoot.equals(newRoot)) {
      throw new RootMismatchError(newRoot, oldRoot, 'new root (same size)');
    }
    return;
  }

  // step 1
  if (proof.length === 0) throw new ProofShapeError('consistency proof is empty');
  // step 2: a power-of-two old tree is a complete left subtree of the new one; the proof leaves its root out.
  const path = isPowerOfTwo(oldSize) ? [oldRoot, ...proof] : proof;

  /*
   * fn and sn are the positions of the old tree's last leaf and the new tree's last leaf at the
   * current level. Step 4 climbs past the levels where the old tree's last node is a right child
   * that the proof's first element already covers (that element is the largest complete subtree
   * ending at oldSize). Then, as in inclusion: a left sibling c (fn odd, or fn = sn, the node being
   * the last of its level in both trees) is folded into both roots; a right sibling only exists in
   * the new tree and is folded into sr alone.
   */
  let fn = oldSize - 1; // step 3
  let sn = newSize - 1;
  while (fn % 2 === 1) {
    // step 4
    fn = half(fn);
    sn = half(sn);
  }
  let fr = path[0]!; // step 5
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    // step 6
    if (sn === 0)
      throw new ProofShapeError(`consistency proof is too long for sizes ${oldSize} → ${newSize}`); // 6a
    if (fn % 2 === 1 || fn === sn) {
      // 6b
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn); // 6c
    sn = half(sn);
  }
  // step 7
  if (sn !== 0) throw new ProofShapeError(`consistency proof is too short for sizes ${oldSize} → ${newSize}`);
  if (!fr.equals(oldRoot)) throw new RootMismatchError(oldRoot, fr, 'old root');
  if (!sr.equals(newRoot)) throw new RootMismatchError(newRoot, sr, 'new root');
}
