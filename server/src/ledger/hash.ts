/**
 * RFC 9162 §2.1 hashing primitives (RFC 6962 §2.1): SHA-256 with one-byte domain separation,
 * so a leaf can never be passed off as an interior node (second-preimage resistance).
 */
import { createHash } from 'node:crypto';

/** Length in bytes of every hash in the ledger (SHA-256). */
export const HASH_SIZE = 32;

/** Root of the empty tree: SHA-256 of the empty string (RFC 9162 §2.1.1, MTH({}) = HASH()). */
export const EMPTY_ROOT: Buffer = createHash('sha256').digest();

/**
 * Hash of one leaf: SHA-256(0x00 || leaf) (RFC 9162 §2.1.1, MTH({d(0)})). A string is hashed as
 * its UTF-8 bytes (the leaf text, without copying it into a Buffer first).
 */
export function leafHash(leaf: Uint8Array | string): Buffer {
  const h = createHash('sha256').update(LEAF_PREFIX);
  return (typeof leaf === 'string' ? h.update(leaf, 'utf8') : h.update(leaf)).digest();
}

/** Hash of an interior node: SHA-256(0x01 || left || right) (RFC 9162 §2.1.1). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  return createHash('sha256').update(NODE_PREFIX).update(left).update(right).digest();
}

/** Plain SHA-256 of the concatenated chunks (no domain separation). */
export function sha256(...chunks: Uint8Array[]): Buffer {
  const h = createHash('sha256');
  for (const c of chunks) h.update(c);
  return h.digest();
}

const LEAF_PREFIX = Uint8Array.of(0x00);
const NODE_PREFIX = Uint8Array.of(0x01);
