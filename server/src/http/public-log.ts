/**
 * The public face of the log (AUDIT_PUBLIC_LOG=true): what verifiers and witnesses need without
 * an API key, as transparency logs publish it — the latest signed checkpoint of an organization
 * and the verifier keys. Off by default: a checkpoint's tree size tells anyone how many events an
 * organization records (docs/verification.md). Requests that carry a key take the authenticated
 * routes as usual; anonymous ones get only these two answers, rate limited per client address
 * (AUDIT_PUBLIC_LOG_RATE_PER_MINUTE), from the same services and output schemas as the API.
 */
import { Router, type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import type { Operations } from '../api/operations';
import { parseRestParams, restParams } from '../api/rest-input';
import type { RateLimiter } from '../cache/rate-limiter';
import { AppError, validationError } from '../errors';
import { rateLimit, requireAccess, stateOf } from './middleware';

/** The query of the public checkpoint: which organization's log. */
const publicCheckpointInput = z.strictObject({ organizationId: z.uuid() });
const checkpointParams = restParams(publicCheckpointInput, []);
const keysParams = restParams(z.strictObject({}), []);

/** Lets requests with a credential through to the authenticated routes. */
function anonymousOnly(req: Request, _res: Response, next: NextFunction): void {
  next(stateOf(req).principal ? 'router' : undefined);
}

/** `GET /ledger/checkpoint?organizationId=…` and `GET /ledger/keys` for anonymous callers. */
export function publicLogRouter(operations: Operations, limiter: RateLimiter | null): Router {
  const r = Router();
  r.use(anonymousOnly);
  const limit = rateLimit(limiter);
  r.get('/ledger/checkpoint', requireAccess('public'), limit, async (req, res) => {
    const parsed = parseRestParams(checkpointParams, publicCheckpointInput, req.query);
    if (!parsed.ok) throw validationError(parsed.issues);
    const { organizationId } = parsed.input as z.output<typeof publicCheckpointInput>;
    // Only a checkpoint signed at commit time: an anonymous request never makes the server sign.
    const checkpoint = await stateOf(req).services.ledger.publishedCheckpoint(organizationId);
    if (!checkpoint) throw new AppError('NOT_FOUND', 'no checkpoint published for this organization');
    res.json(operations.ledgerCheckpoint.output.parse(checkpoint));
  });
  r.get('/ledger/keys', requireAccess('public'), limit, async (req, res) => {
    const parsed = parseRestParams(keysParams, z.strictObject({}), req.query);
    if (!parsed.ok) throw validationError(parsed.issues);
    res.json(operations.ledgerKeys.output.parse({ keys: await stateOf(req).services.ledger.keys() }));
  });
  return r;
}
