import type { Operations } from '../../api/operations';
import { mutationOf, queryOf } from '../procedure';
import { router } from '../trpc';

/** `privacy.*`: subject erasure and pseudonyms (docs/privacy.md). */
export function privacyRouter(o: Operations) {
  return router({
    erase: mutationOf(o.privacyErasuresCreate),
    erasures: queryOf(o.privacyErasuresList),
    resolve: queryOf(o.privacyPseudonymResolve),
  });
}

/** `legalHolds.*`: place, list and release legal holds. */
export function legalHoldsRouter(o: Operations) {
  return router({
    create: mutationOf(o.legalHoldsCreate),
    list: queryOf(o.legalHoldsList),
    release: mutationOf(o.legalHoldsRelease),
  });
}
