/**
 * The Express application: health and metrics, sign-in under /auth, REST under /api/v1 (with its
 * OpenAPI document) and tRPC under /trpc, behind request context, security headers, CORS, auth
 * and rate limits.
 */
import express, { type Express } from 'express';
import * as trpcExpress from '@trpc/server/adapters/express';
import type { Services } from '../api/context';
import { recordLoginFailure } from '../api/accountability';
import { createOperations, type InputLimits } from '../api/operations';
import type { LoginLimiter } from '../auth/login-limiter';
import type { OidcVerifier } from '../auth/oidc';
import type { RateLimiter } from '../cache/rate-limiter';
import type { Logger } from '../observability/logger';
import type { Metrics } from '../observability/metrics';
import { explorer } from '../graphql/explorer';
import { graphqlHandler, sendGraphQLError } from '../graphql/handler';
import type { GraphQLLimits } from '../graphql/limits';
import { buildGraphQLSchema } from '../graphql/schema';
import { sendTrpcError, trpcCallsOf } from '../trpc/http-reply';
import { graphqlCallsOf } from '../graphql/calls';
import { createAppRouter } from '../trpc/routers';
import { DATABASE_RETRY_AFTER_SECONDS } from '../db/errors';
import { errorHandler, sendError } from './errors';
import { healthRouter, type ReadinessDeps } from './health';
import {
  authenticate,
  cors,
  declaredBodyLimit,
  rateLimit,
  requestContext,
  requireAccess,
  requireCredential,
  securityHeaders,
  stateOf,
  type Authenticator,
  type ErrorReply,
} from './middleware';
import { authRouter, type AuthRoutesDeps } from './auth-routes';
import { eventStreamRouter } from './event-stream';
import { exportRouter } from './export';
import { fhirRouter } from './fhir';
import { subjectExportRouter } from './subject-export';
import { openApiDocument } from './openapi';
import { publicLogRouter } from './public-log';
import { reportsRouter } from './reports';
import { restRouter } from './rest';

/** Everything the HTTP layer needs. */
export interface AppDeps {
  services: Services;
  logger: Logger;
  metrics: Metrics;
  readiness: Omit<ReadinessDeps, 'metrics'>;
  rateLimiter: RateLimiter | null;
  corsOrigins: string[];
  trustProxy: string;
  bodyLimitBytes: number;
  /** Limits the input schemas enforce (the operation table is built for them). */
  limits: InputLimits;
  /** Most calls one tRPC batch request may hold. */
  trpcMaxBatch: number;
  /** AUDIT_PUBLIC_LOG: anonymous checkpoint and keys, with this per-address limiter (null = unlimited). */
  publicLog?: { limiter: RateLimiter | null } | null;
  /** GraphQL document limits, introspection, and the explorer page (never in production). */
  graphql: { limits: GraphQLLimits; introspection: boolean; explorer: boolean };
  /** Bearer JWTs of the configured OpenID provider (AUTH_OIDC_*); null when not configured. */
  oidc?: OidcVerifier | null;
  /** Sign-in attempt limits (AUTH_LOGIN_*); null = unlimited. */
  loginLimiter?: LoginLimiter | null;
  /** Comment line interval on idle live streams (STREAM_HEARTBEAT_MS). */
  streamHeartbeatMs?: number;
  /** Told of every sign-in attempt (the audit trail). */
  onSignIn?: AuthRoutesDeps['onSignIn'];
  /**
   * The job functions for an Inngest server at `/api/inngest` (INNGEST_SIGNING_KEY), built at
   * the first request; null = no such route. The SDK checks each request's signature.
   */
  inngest?: (() => express.RequestHandler) | null;
}

const trpcReply: ErrorReply = (req, res, code, message, issues) => sendTrpcError(req, res, code, message, stateOf(req).requestId, issues);
const graphqlReply: ErrorReply = (req, res, code, message, issues) => sendGraphQLError(req, res, code, message, stateOf(req).requestId, issues);

/** Builds the app (no listening: tests mount it on an ephemeral port). */
export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', deps.trustProxy);
  app.set('query parser', 'simple');
  app.use(requestContext(deps.logger, deps.services, deps.metrics));
  app.use(securityHeaders);
  app.use(healthRouter({ ...deps.readiness, metrics: deps.metrics }));
  app.use(cors(deps.corsOrigins));
  const onSignIn: NonNullable<AuthRoutesDeps['onSignIn']> =
    deps.onSignIn ??
    ((req, outcome) => {
      if (!outcome.ok) void recordLoginFailure(stateOf(req), outcome.email, outcome.limited ? 'rate-limited' : 'rejected', req.ip ?? 'unknown');
    });
  app.use('/auth', authRouter({ identity: deps.services.identity, limiter: deps.loginLimiter ?? null, onSignIn }));
  const auth: Authenticator = { apiKeys: deps.services.apiKeys, identity: deps.services.identity, oidc: deps.oidc ?? null, origins: new Set(deps.corsOrigins) };

  if (deps.inngest) {
    // Built at the first request, once every job kind is declared.
    const build = deps.inngest;
    let handler: express.RequestHandler | null = null;
    app.all('/api/inngest', requireAccess('public'), express.json({ limit: deps.bodyLimitBytes }), (req, res, next) => (handler ??= build())(req, res, next));
  }

  const operations = createOperations(deps.limits);
  const openapi = openApiDocument(operations, '/api/v1');
  const api = express.Router();
  api.get('/openapi.json', requireAccess('public'), (_req, res) => {
    res.json(openapi);
  });
  // Credentials, rate limit and declared size are checked from the headers before the body is
  // read: an anonymous or oversized upload is refused without being received.
  api.use(authenticate(auth));
  // Anonymous checkpoint and keys when the log is public (a GET has no body to refuse).
  if (deps.publicLog) api.use(publicLogRouter(operations, deps.publicLog.limiter));
  api.use(
    requireCredential(),
    rateLimit(deps.rateLimiter),
    declaredBodyLimit(deps.bodyLimitBytes),
    express.json({ limit: deps.bodyLimitBytes, strict: true }),
  );
  api.use(exportRouter()); // streaming, outside the JSON operation table
  // Live events (SSE), before the table's GET /events/:id would take "stream" for an id.
  if (deps.services.streams) api.use(eventStreamRouter(deps.services.streams, deps.streamHeartbeatMs ?? 15_000));
  api.use(reportsRouter()); // streaming too
  api.use(subjectExportRouter()); // streaming too (docs/privacy.md §5)
  api.use(restRouter(operations));
  api.use((req, res) => sendError(res, 'NOT_FOUND', `no route ${req.method} ${req.baseUrl}${req.path}`, stateOf(req).requestId));
  app.use('/api/v1', api);

  // FHIR R4 AuditEvent (OperationOutcome errors; /fhir/metadata is public).
  app.use('/fhir', fhirRouter({ auth, rateLimiter: deps.rateLimiter, bodyLimitBytes: deps.bodyLimitBytes }));

  // A batch may hold at most trpcMaxBatch calls, and each call counts against the rate limit.
  const batchCap: express.RequestHandler = (req, res, next) => {
    const calls = trpcCallsOf(req).length;
    if (calls > deps.trpcMaxBatch) {
      return trpcReply(req, res, 'BAD_REQUEST', `a batch may hold at most ${deps.trpcMaxBatch} calls; this one has ${calls}`, [
        { path: '(root)', message: `at most ${deps.trpcMaxBatch} calls per batch (TRPC_MAX_BATCH)` },
      ]);
    }
    next();
  };
  app.use(
    '/trpc',
    authenticate(auth, trpcReply),
    requireCredential(trpcReply),
    batchCap,
    rateLimit(deps.rateLimiter, trpcReply, (req) => trpcCallsOf(req).length),
    declaredBodyLimit(deps.bodyLimitBytes, trpcReply),
    trpcExpress.createExpressMiddleware({
      router: createAppRouter(operations),
      // The transport-independent context the HTTP middleware built (and authenticated).
      createContext: ({ req }) => stateOf(req),
      maxBodySize: deps.bodyLimitBytes,
      maxBatchSize: deps.trpcMaxBatch,
      onError({ error, ctx }) {
        if (error.code === 'INTERNAL_SERVER_ERROR') ctx?.logger.error({ err: error.cause ?? error }, 'internal error');
      },
      // Every 503 (database unavailable, shutting down) says when to retry.
      responseMeta: ({ errors }) => (errors.some((e) => e.code === 'SERVICE_UNAVAILABLE') ? { headers: { 'retry-after': String(DATABASE_RETRY_AFTER_SECONDS) } } : {}),
    }),
  );

  // GraphQL over the same operation table; the body is read as text (bounded) and parsed by graphql-http.
  app.use(
    '/graphql',
    ...(deps.graphql.explorer ? [explorer] : []),
    authenticate(auth, graphqlReply),
    requireCredential(graphqlReply),
    declaredBodyLimit(deps.bodyLimitBytes, graphqlReply),
    express.text({ type: () => true, limit: deps.bodyLimitBytes }),
    // After the (bounded) body is read: every operation the document calls counts, as every call
    // of a tRPC batch does, so aliases cannot multiply what one request is allowed.
    rateLimit(deps.rateLimiter, graphqlReply, graphqlCallsOf),
    graphqlHandler({
      schema: buildGraphQLSchema(operations),
      limits: deps.graphql.limits,
      introspection: deps.graphql.introspection,
      contextOf: stateOf,
    }),
  );
  app.use('/graphql', ((err, req, res, next) => {
    const type = (err as { type?: string }).type;
    if (type === 'entity.too.large') return graphqlReply(req, res, 'PAYLOAD_TOO_LARGE', `request body is over ${deps.bodyLimitBytes} bytes`);
    if (type !== undefined) return graphqlReply(req, res, 'BAD_REQUEST', 'malformed request body', [{ path: '(root)', message: 'malformed request body' }]);
    next(err);
  }) as express.ErrorRequestHandler);

  app.use((req, res) => sendError(res, 'NOT_FOUND', `no route ${req.method} ${req.path}`, stateOf(req).requestId));
  app.use(errorHandler);
  return app;
}
