import { operations as o } from '../../api/operations';
import { queryOf } from '../procedure';
import { router } from '../trpc';

/** `ledger.*`: checkpoints, proofs, leaves and keys. */
export const ledgerRouter = router({
  checkpoint: queryOf(o.ledgerCheckpoint),
  inclusionProof: queryOf(o.ledgerInclusionProof),
  consistencyProof: queryOf(o.ledgerConsistencyProof),
  leaves: queryOf(o.ledgerLeaves),
  keys: queryOf(o.ledgerKeys),
});
