import type { Operations } from '../../api/operations';
import { mutationOf, queryOf } from '../procedure';
import { router } from '../trpc';

/** `apiKeys.*`: admin key management. */
export function apiKeysRouter(o: Operations) {
  return router({
    create: mutationOf(o.apiKeysCreate),
    list: queryOf(o.apiKeysList),
    revoke: mutationOf(o.apiKeysRevoke),
  });
}
