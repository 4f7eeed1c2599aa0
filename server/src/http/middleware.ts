/**
 * Cross-cutting HTTP middleware: request ids and per-request loggers, metrics, security headers,
 * CORS, authentication and rate limiting.
 */
import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { ApiContext, Services } from '../api/context';
import type { ApiKeyService, Principal } from '../auth/api-keys';
import { ORGANIZATION_HEADER, type IdentityService } from '../auth/identity';
import { looksLikeJwt, type OidcVerifier } from '../auth/oidc';
import { recordAuthEvent } from '../api/accountability';
import { can, deniedMessage, type Access } from '../auth/permissions';
import type { RateLimiter } from '../cache/rate-limiter';
import type { Logger } from '../observability/logger';
import type { Metrics } from '../observability/metrics';
import { AppError, type AppErrorCode, type FieldIssue } from '../errors';
import { databaseUnavailable, isDatabaseUnavailable } from '../db/errors';
import { sendError } from './errors';

/** The API context of a request, attached as `req.state` by {@link requestContext}. */
type StatefulRequest = Request & { state: ApiContext };

/** The request's {@link ApiContext} that {@link requestContext} attached (and authentication completed). */
export function stateOf(req: Request): ApiContext {
  return (req as StatefulRequest).state;
}

/** Request id (accepted from a trusted proxy when well-formed), child logger, access log, metrics. */
export function requestContext(logger: Logger, services: Services, metrics: Metrics): RequestHandler {
  return (req, res, next) => {
    const incoming = req.get('x-request-id');
    const requestId = incoming && /^[A-Za-z0-9._-]{8,128}$/.test(incoming) ? incoming : randomUUID();
    res.setHeader('x-request-id', requestId);
    const child = logger.child({ reqId: requestId });
    (req as StatefulRequest).state = { requestId, logger: child, services, principal: null };
    const start = process.hrtime.bigint();
    res.on('finish', () => {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      // Route templates (not raw URLs) keep label cardinality bounded.
      const route = routeLabel(req);
      const labels = { method: req.method, route, status: String(res.statusCode) };
      metrics.httpRequests.inc(labels);
      metrics.httpDuration.observe(labels, seconds);
      const s = stateOf(req);
      child.info(
        {
          method: req.method,
          url: req.originalUrl.split('?')[0],
          statusCode: res.statusCode,
          ms: Math.round(seconds * 1000 * 100) / 100,
          org: s.principal?.organizationId,
          keyId: s.principal?.keyId,
        },
        'request',
      );
    });
    next();
  };
}

function routeLabel(req: Request): string {
  const base = req.baseUrl ?? '';
  if (base.startsWith('/trpc')) return '/trpc/' + (req.path.split('/')[1] ?? '');
  const route = (req.route as { path?: string } | undefined)?.path;
  if (route) return base + route;
  if (['/health', '/ready', '/metrics'].includes(req.path)) return req.path;
  return base ? base + '/*' : 'unmatched';
}

/** Conservative security headers for an API that serves no HTML. */
export const securityHeaders: RequestHandler = (_req, res, next) => {
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('x-frame-options', 'DENY');
  res.setHeader('referrer-policy', 'no-referrer');
  res.setHeader('content-security-policy', "default-src 'none'; frame-ancestors 'none'");
  res.setHeader('cross-origin-resource-policy', 'same-site');
  res.setHeader('cache-control', 'no-store');
  next();
};

/** CORS for the configured browser origins only (no wildcard: requests carry credentials). */
export function cors(origins: string[]): RequestHandler {
  const allowed = new Set(origins);
  return (req, res, next) => {
    const origin = req.get('origin');
    if (origin && allowed.has(origin)) {
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('vary', 'Origin');
      res.setHeader('access-control-allow-headers', `authorization, content-type, x-api-key, x-request-id, trpc-accept, ${ORGANIZATION_HEADER}`);
      // Browsers send the session cookie cross-origin only to an allowed origin that says so.
      res.setHeader('access-control-allow-credentials', 'true');
      res.setHeader('access-control-allow-methods', 'GET, POST, DELETE, OPTIONS');
      res.setHeader('access-control-expose-headers', 'x-request-id, ratelimit-limit, ratelimit-remaining, ratelimit-reset');
      res.setHeader('access-control-max-age', '600');
    }
    if (req.method === 'OPTIONS' && origin) {
      res.status(allowed.has(origin) ? 204 : 403).end();
      return;
    }
    next();
  };
}

/** `Authorization: Bearer <key>` or `x-api-key: <key>`. */
export function credentialOf(req: Request): string | null {
  const auth = req.get('authorization');
  if (auth) {
    const m = /^Bearer\s+(\S+)$/i.exec(auth);
    return m ? m[1]! : null;
  }
  return req.get('x-api-key') ?? null;
}

/** Answers an error in the format of the API a request is for (REST JSON or tRPC's envelope). */
export type ErrorReply = (req: Request, res: Response, code: AppErrorCode, message: string, issues?: FieldIssue[]) => void;

/** The REST error reply. */
export const restReply: ErrorReply = (req, res, code, message, issues) => sendError(res, code, message, stateOf(req).requestId, issues);

/** Whether the client is sending a body this process has not read. */
function hasPendingBody(req: Request): boolean {
  const length = Number(req.get('content-length') ?? 0);
  return (length > 0 || req.get('transfer-encoding') !== undefined) && !req.readableEnded;
}

/**
 * Refuses a request before its body is read: the connection is closed after the answer, so the
 * client cannot make this process receive (or buffer) a body it has already refused.
 */
function refuse(reply: ErrorReply, req: Request, res: Response, code: AppErrorCode, message: string, issues?: FieldIssue[]): void {
  if (hasPendingBody(req)) res.setHeader('connection', 'close');
  reply(req, res, code, message, issues);
}

/** Where callers' credentials are checked. */
export interface Authenticator {
  apiKeys: ApiKeyService;
  /** Session cookies of signed-in people; null when sign-in is off. */
  identity: IdentityService | null;
  /** Bearer JWTs of the configured OpenID provider; null when not configured. */
  oidc: OidcVerifier | null;
  /** Browser origins (CORS allow-list) whose cookie-authenticated state changes are accepted. */
  origins: ReadonlySet<string>;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * CSRF defence for cookie-authenticated requests that change state: the Origin must be one of
 * the allow-list or the server's own (a browser always sends Origin on such requests, and a page
 * cannot forge it). API keys and bearer tokens are never sent by a browser on its own.
 */
function originAllowed(req: Request, origins: ReadonlySet<string>): boolean {
  const origin = req.get('origin');
  if (!origin || origin === 'null') return false;
  return origins.has(origin) || origin === `${req.protocol}://${req.get('host') ?? ''}`;
}

/** The organization a member of several names in the `x-organization-id` header (validated later). */
function requestedOrganization(req: Request): string | undefined {
  const v = req.get(ORGANIZATION_HEADER);
  return v === undefined ? undefined : v.slice(0, 64);
}

/**
 * Resolves the principal from the request headers alone (the body is not read yet): a bearer
 * credential (API key, or a JWT when OIDC is configured), else the session cookie. A credential
 * that is present but invalid is a 401 at once; a missing one leaves the principal empty for
 * {@link requireCredential} (or a public route) to decide.
 */
export function authenticate(auth: Authenticator, reply: ErrorReply = restReply): RequestHandler {
  return async (req: Request, res: Response, next: NextFunction) => {
    const token = credentialOf(req);
    let principal: Principal | null;
    try {
      if (token === null) {
        if (req.get('authorization')) return refuse(reply, req, res, 'UNAUTHORIZED', 'Authorization must be "Bearer <api key or token>"');
        if (!auth.identity?.hasSessionCookie(req.get('cookie'))) return next();
        const session = await auth.identity.sessionOf(req.headers);
        if (!session) return refuse(reply, req, res, 'UNAUTHORIZED', 'the session has ended or is not valid: sign in again');
        principal = await auth.identity.principalOf(session, requestedOrganization(req));
        if (!SAFE_METHODS.has(req.method) && !originAllowed(req, auth.origins)) {
          return refuse(reply, req, res, 'FORBIDDEN', 'a cookie-authenticated request that changes state needs the Origin of an allowed site');
        }
      } else if (auth.oidc && looksLikeJwt(token)) {
        principal = await auth.oidc.verify(token);
        if (!principal) return refuse(reply, req, res, 'UNAUTHORIZED', 'invalid or expired token');
      } else {
        principal = await auth.apiKeys.authenticate(token);
        if (!principal) return refuse(reply, req, res, 'UNAUTHORIZED', 'invalid or revoked API key');
      }
    } catch (err) {
      if (err instanceof AppError) return refuse(reply, req, res, err.code, err.message, err.issues);
      stateOf(req).logger.warn({ err: (err as Error).message }, 'credential check failed');
      if (isDatabaseUnavailable(err)) return refuse(reply, req, res, 'UNAVAILABLE', databaseUnavailable('credentials cannot be checked; retry').message);
      return refuse(reply, req, res, 'UNAVAILABLE', 'credentials cannot be checked right now; retry');
    }
    stateOf(req).principal = principal;
    next();
  };
}

/** A route's first handler: it enforces the route's access decision and carries it (`access`). */
export type AccessGate = RequestHandler & { readonly access: Access };

/**
 * The access check of one REST route, and its declaration: every route of the app starts with
 * one (the role matrix test walks the app and reads `access` from each). A public route lets
 * anyone through; otherwise 401 without a principal, 403 when its role lacks the permission.
 */
export function requireAccess(access: Access): AccessGate {
  const gate: RequestHandler = (req, _res, next) => {
    if (access !== 'public') {
      const principal = stateOf(req).principal;
      if (!principal) throw new AppError('UNAUTHORIZED', 'a valid API key is required');
      if (!can(principal.role, access)) {
        const route = `${req.method} ${req.baseUrl}${(req.route as { path?: string } | undefined)?.path ?? ''}`;
        void recordAuthEvent(stateOf(req), principal.organizationId, 'auth.access.denied', { principal, status: 'failure', details: { permission: access, route } });
        throw new AppError('FORBIDDEN', deniedMessage(principal.role, access));
      }
    }
    next();
  };
  return Object.assign(gate, { access });
}

/** 401 for a request without a credential, before its body is read. */
export function requireCredential(reply: ErrorReply = restReply): RequestHandler {
  return (req, res, next) => {
    if (!stateOf(req).principal) return refuse(reply, req, res, 'UNAUTHORIZED', 'a valid API key is required');
    next();
  };
}

/**
 * 413 at once for a declared `Content-Length` over the limit, instead of receiving the body up to
 * the limit (or holding the connection until a timeout); undeclared (chunked) bodies are cut at
 * the limit by the body parser.
 */
export function declaredBodyLimit(limitBytes: number, reply: ErrorReply = restReply): RequestHandler {
  return (req, res, next) => {
    const declared = req.get('content-length');
    if (declared !== undefined && Number(declared) > limitBytes) {
      return refuse(reply, req, res, 'PAYLOAD_TOO_LARGE', `request body is ${declared} bytes; the limit is ${limitBytes}`);
    }
    next();
  };
}

/**
 * Per-key (or per-address when anonymous) rate limit with RateLimit headers and 429s. `cost`
 * says how many requests one HTTP request counts for (every call of a tRPC batch counts).
 */
export function rateLimit(limiter: RateLimiter | null, reply: ErrorReply = restReply, cost: (req: Request) => number = () => 1): RequestHandler {
  return async (req, res, next) => {
    if (!limiter) return next();
    const state = stateOf(req);
    const key = state.principal ? `k:${state.principal.keyId}` : `ip:${req.ip ?? 'unknown'}`;
    const d = await limiter.hit(key, cost(req));
    res.setHeader('ratelimit-limit', String(d.limit));
    res.setHeader('ratelimit-remaining', String(d.remaining));
    res.setHeader('ratelimit-reset', String(d.resetSeconds));
    if (!d.allowed) {
      res.setHeader('retry-after', String(d.resetSeconds));
      return refuse(reply, req, res, 'TOO_MANY_REQUESTS', `rate limit of ${d.limit} requests per minute exceeded`);
    }
    next();
  };
}
