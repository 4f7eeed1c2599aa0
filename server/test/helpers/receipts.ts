/** Offline verification of a write receipt, with nothing but the ledger module and the public key. */
import { openCheckpoint, parseVerifierKey, verifyInclusion } from '../../src/ledger';

/** The fields of a receipt the check reads. */
export interface ReceiptLike {
  leafHash: string;
  leafIndex: number;
  treeSize: number;
  rootHash: string;
  checkpoint: string;
  inclusionProof: { hashes: string[] };
}

const b = (s: string) => Buffer.from(s, 'base64');

/**
 * Throws unless the receipt's checkpoint is signed by `verifierKey` for `origin`, matches the
 * receipt's tree size and root, and the inclusion proof puts the leaf under that root.
 */
export function verifyReceipt(r: ReceiptLike, verifierKey: string, origin: string): void {
  const opened = openCheckpoint(r.checkpoint, [parseVerifierKey(verifierKey)]);
  if (opened.checkpoint.origin !== origin) throw new Error(`checkpoint origin ${opened.checkpoint.origin}, expected ${origin}`);
  if (opened.checkpoint.size !== r.treeSize) throw new Error('checkpoint size differs from the receipt');
  if (opened.checkpoint.rootHash.toString('base64') !== r.rootHash) throw new Error('checkpoint root differs from the receipt');
  verifyInclusion(b(r.leafHash), r.leafIndex, r.treeSize, r.inclusionProof.hashes.map(b), opened.checkpoint.rootHash);
}
