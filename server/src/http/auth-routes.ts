/**
 * `/auth/*`: sign-in, sign-out, the current session and password changes, answered by the sign-in
 * library (auth/identity.ts) behind the server's own guards: JSON bodies of at most 16 KiB, and
 * sign-in attempts limited per client address and per account (429 with `Retry-After`, the same
 * answer whether the account exists or not). Every route here is public: the library checks the
 * session cookie and, for cookie-carrying POSTs, the Origin against the trusted origins.
 */
import express, { Router, type NextFunction, type Request, type Response } from 'express';
import type { IdentityService } from '../auth/identity';
import { loginKeys, type LoginLimiter } from '../auth/login-limiter';
import { sendError } from './errors';
import { requireAccess, stateOf } from './middleware';

/** Largest /auth request body. */
export const AUTH_BODY_LIMIT_BYTES = 16 * 1024;

/** What the /auth routes need. */
export interface AuthRoutesDeps {
  identity: IdentityService | null;
  limiter: LoginLimiter | null;
  /** Called after every sign-in attempt with its outcome (for the audit trail). */
  onSignIn?: (req: Request, outcome: { email: string; ok: boolean; limited: boolean }) => void;
}

/** Refuses a non-JSON body (the library would read it without a limit). */
function jsonOnly(req: Request, res: Response, next: NextFunction): void {
  const hasBody = Number(req.get('content-length') ?? 0) > 0 || req.get('transfer-encoding') !== undefined;
  if (hasBody && !req.is('application/json')) {
    res.setHeader('connection', 'close');
    return sendError(res, 'BAD_REQUEST', 'an /auth request body must be JSON', stateOf(req).requestId, [{ path: '(root)', message: 'content-type must be application/json' }]);
  }
  const declared = Number(req.get('content-length') ?? 0);
  if (declared > AUTH_BODY_LIMIT_BYTES) {
    res.setHeader('connection', 'close');
    return sendError(res, 'PAYLOAD_TOO_LARGE', `request body is ${declared} bytes; the limit is ${AUTH_BODY_LIMIT_BYTES}`, stateOf(req).requestId);
  }
  next();
}

/** The `/auth` router (mount at /auth). */
export function authRouter(deps: AuthRoutesDeps): Router {
  const r = Router();
  const { identity, limiter } = deps;
  if (!identity) {
    r.all('/*splat', requireAccess('public'), (req, res) => {
      sendError(res, 'NOT_FOUND', 'sign-in is not configured on this server (AUTH_SECRET)', stateOf(req).requestId);
    });
    return r;
  }
  const json = express.json({ limit: AUTH_BODY_LIMIT_BYTES, strict: true });
  const handle = (req: Request, res: Response) => identity.handle(req, res);

  r.post('/sign-in/email', requireAccess('public'), jsonOnly, json, async (req: Request, res: Response) => {
    const body = req.body as { email?: unknown } | undefined;
    const email = typeof body?.email === 'string' ? body.email.slice(0, 320) : '';
    const keys = loginKeys(req.ip ?? 'unknown', email);
    if (limiter) {
      const decision = await limiter.attempt(keys);
      if (!decision.allowed) {
        res.setHeader('retry-after', String(decision.retryAfterSeconds));
        deps.onSignIn?.(req, { email, ok: false, limited: true });
        return sendError(res, 'TOO_MANY_REQUESTS', `too many sign-in attempts; retry after ${decision.retryAfterSeconds} seconds`, stateOf(req).requestId);
      }
    }
    res.on('finish', () => {
      const ok = res.statusCode >= 200 && res.statusCode < 300;
      if (ok && limiter) void limiter.succeeded(keys);
      deps.onSignIn?.(req, { email, ok, limited: false });
    });
    await handle(req, res);
  });
  r.all('/*splat', requireAccess('public'), jsonOnly, json, handle);
  return r;
}
