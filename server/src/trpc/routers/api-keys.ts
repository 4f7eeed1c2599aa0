import { operations as o } from '../../api/operations';
import { mutationOf, queryOf } from '../procedure';
import { router } from '../trpc';

/** `apiKeys.*`: admin key management. */
export const apiKeysRouter = router({
  create: mutationOf(o.apiKeysCreate),
  list: queryOf(o.apiKeysList),
  revoke: mutationOf(o.apiKeysRevoke),
});
