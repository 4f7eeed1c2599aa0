/**
 * The compact range of a tree prefix [0, size): the one implementation of the incremental
 * RFC 9162 §2.1.1 Merkle tree, used by the tree math (tree.ts, appends), the bundle verifier
 * (rebuilding a log leaf by leaf) and the benchmarks. After transparency-dev/merkle's
 * `compact.Range`, restricted to ranges that begin at leaf 0 (docs/ledger-spec.md §2).
 *
 * A tree of `size` leaves is the sequence of its complete subtrees ("the frontier"), one per set
 * bit of `size`, largest (leftmost) first: 13 = 8 + 4 + 1 leaves is the nodes (3,0), (2,2), (0,12).
 * Appending a leaf works like binary addition: push a level-0 node, then while the two last
 * entries have the same level L they are siblings and merge into their parent at level L + 1.
 * Every node a merge creates is complete, so it never changes again: the `visit` callback hands
 * it to whoever stores it (the log writer) or checks it (the self-audit).
 *
 * Memory is O(log size) whatever the size; an append costs amortized two hashes.
 */
import { EMPTY_ROOT, HASH_SIZE, nodeHash } from './hash';

/** Called for each node an append completes: level 0 for the leaf, then each new parent. */
export type VisitNode = (level: number, index: number, hash: Buffer) => void;

/**
 * MTH of a right-edge subtree from its complete pieces, largest first (RFC 9162 §2.1.1 applied
 * repeatedly; every split point is a power of two): HASH(P1 || HASH(P2 || … HASH(P(r−1) || Pr))).
 * {@link EMPTY_ROOT} for no pieces.
 */
export function foldSubtrees(hashes: readonly Buffer[]): Buffer {
  let h = hashes[hashes.length - 1];
  if (h === undefined) return EMPTY_ROOT;
  for (let i = hashes.length - 2; i >= 0; i--) h = nodeHash(hashes[i]!, h);
  return h;
}

/** Levels of the complete subtrees of [0, size), largest first: the set bits of `size`, highest first. */
export function frontierLevels(size: number): number[] {
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`size must be a non-negative safe integer, got ${String(size)}`);
  const levels: number[] = [];
  // Division, not >>: sizes pass 2^32.
  for (let n = size, level = 0; n > 0; n = Math.floor(n / 2), level++) if (n % 2 === 1) levels.unshift(level);
  return levels;
}

/** The compact range [0, size) of a Merkle tree: its frontier, extended one leaf at a time. */
export class CompactRange {
  private readonly hashes: Buffer[];
  private readonly levels: number[];
  private end: number;

  /**
   * @param size leaves already covered (0 for an empty tree).
   * @param frontier the hashes of the complete subtrees of [0, size), largest first.
   * @throws RangeError if the frontier does not have one 32-byte hash per set bit of `size`.
   */
  constructor(size = 0, frontier: readonly Buffer[] = []) {
    const levels = frontierLevels(size);
    if (frontier.length !== levels.length) {
      throw new RangeError(`a tree of size ${size} has a frontier of ${levels.length} hashes, got ${frontier.length}`);
    }
    frontier.forEach((h, i) => {
      if (!(h instanceof Uint8Array) || h.length !== HASH_SIZE) throw new RangeError(`frontier[${i}] must be a ${HASH_SIZE}-byte hash`);
    });
    this.hashes = frontier.slice();
    this.levels = levels;
    this.end = size;
  }

  /** Number of leaves covered. */
  get size(): number {
    return this.end;
  }

  /** The frontier: hashes of the complete subtrees of [0, size), largest first (a copy). */
  frontier(): Buffer[] {
    return this.hashes.slice();
  }

  /**
   * Appends leaf `size` (its RFC 9162 leaf hash) and reports every node that becomes complete.
   * Leaf n's new parent at level L ends where leaf n ends, at n + 1, so it covers
   * [n + 1 − 2^L, n + 1) and its index is (n + 1) / 2^L − 1.
   */
  append(leafHash: Buffer, visit?: VisitNode): void {
    const n = this.end;
    if (n >= Number.MAX_SAFE_INTEGER) throw new RangeError('the tree size would pass 2^53 − 1');
    visit?.(0, n, leafHash);
    this.hashes.push(leafHash);
    this.levels.push(0);
    const end = n + 1;
    let top = this.levels.length - 1;
    while (top >= 1 && this.levels[top] === this.levels[top - 1]) {
      const right = this.hashes.pop()!;
      const left = this.hashes.pop()!;
      this.levels.pop();
      const level = this.levels.pop()! + 1;
      const parent = nodeHash(left, right);
      visit?.(level, end / 2 ** level - 1, parent);
      this.hashes.push(parent);
      this.levels.push(level);
      top--;
    }
    this.end = end;
  }

  /** MTH(D[0:size]): the frontier folded right to left (RFC 9162 §2.1.1). */
  root(): Buffer {
    return foldSubtrees(this.hashes);
  }
}
