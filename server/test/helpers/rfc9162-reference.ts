/**
 * RFC 9162 §2.1 written literally, as the reference the fast tree code is checked against
 * (tree.test.ts, compact-range.test.ts). D is the list of leaf inputs; a sub-list D[lo:hi] is the
 * pair (lo, hi). MTH results are cached by range only for speed; the recursion is the RFC's.
 */
import { EMPTY_ROOT, leafHash, nodeHash } from '../../src/ledger';

/** Number of leaves in D. */
export const MAX = 300;
/** The leaf inputs d(0)…d(MAX − 1). */
export const D: Buffer[] = Array.from({ length: MAX }, (_, i) => Buffer.from(`leaf ${i}`));
const mthCache = new Map<string, Buffer>();

/** The largest power of two smaller than n (n > 1), found by doubling (RFC 9162 §2.1.1). */
function k(n: number): number {
  let p = 1;
  while (p * 2 < n) p *= 2;
  return p;
}

/** MTH(D[lo:hi]) (RFC 9162 §2.1.1). */
export function MTH(lo: number, hi: number): Buffer {
  const key = `${lo}:${hi}`;
  let h = mthCache.get(key);
  if (h) return h;
  const n = hi - lo;
  if (n === 0) h = EMPTY_ROOT;
  else if (n === 1) h = leafHash(D[lo]!);
  else h = nodeHash(MTH(lo, lo + k(n)), MTH(lo + k(n), hi));
  mthCache.set(key, h);
  return h;
}

/** PATH(m, D[lo:hi]) (RFC 9162 §2.1.3.1), m relative to lo. */
export function PATH(m: number, lo: number, hi: number): Buffer[] {
  const n = hi - lo;
  if (n === 1) return [];
  const kk = k(n);
  if (m < kk) return [...PATH(m, lo, lo + kk), MTH(lo + kk, hi)];
  return [...PATH(m - kk, lo + kk, hi), MTH(lo, lo + kk)];
}

/** PROOF(m, D[n]) = SUBPROOF(m, D[n], true) (RFC 9162 §2.1.4.1). */
export function PROOF(m: number, n: number): Buffer[] {
  return SUBPROOF(m, 0, n, true);
}

function SUBPROOF(m: number, lo: number, hi: number, b: boolean): Buffer[] {
  const n = hi - lo;
  if (m === n) return b ? [] : [MTH(lo, hi)];
  const kk = k(n);
  if (m <= kk) return [...SUBPROOF(m, lo, lo + kk, b), MTH(lo + kk, hi)];
  return [...SUBPROOF(m - kk, lo + kk, hi, false), MTH(lo, lo + kk)];
}

