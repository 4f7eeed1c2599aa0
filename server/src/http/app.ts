/**
 * The Express application: health and metrics, REST under /api/v1 (with its OpenAPI document)
 * and tRPC under /trpc, behind request context, security headers, CORS, auth and rate limits.
 */
import express, { type Express } from 'express';
import * as trpcExpress from '@trpc/server/adapters/express';
import type { Services } from '../api/context';
import type { RateLimiter } from '../cache/rate-limiter';
import type { Logger } from '../observability/logger';
import type { Metrics } from '../observability/metrics';
import { appRouter } from '../trpc/routers';
import { createContextFromExpress } from '../trpc/trpc';
import { errorHandler, sendError } from './errors';
import { healthRouter, type ReadinessDeps } from './health';
import { authenticate, cors, rateLimit, requestContext, securityHeaders, stateOf } from './middleware';
import { exportRouter } from './export';
import { openApiDocument } from './openapi';
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
}

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

  const openapi = openApiDocument('/api/v1');
  const api = express.Router();
  api.get('/openapi.json', (_req, res) => {
    res.json(openapi);
  });
  api.use(express.json({ limit: deps.bodyLimitBytes, strict: true }));
  api.use(authenticate(deps.services.apiKeys), rateLimit(deps.rateLimiter));
  api.use(exportRouter()); // streaming, outside the JSON operation table
  api.use(restRouter());
  api.use((req, res) => sendError(res, 'NOT_FOUND', `no route ${req.method} ${req.baseUrl}${req.path}`, stateOf(req).requestId));
  app.use('/api/v1', api);

  app.use(
    '/trpc',
    authenticate(deps.services.apiKeys),
    rateLimit(deps.rateLimiter),
    trpcExpress.createExpressMiddleware({
      router: appRouter,
      createContext: createContextFromExpress,
      maxBodySize: deps.bodyLimitBytes,
      onError({ error, ctx }) {
        if (error.code === 'INTERNAL_SERVER_ERROR') ctx?.logger.error({ err: error.cause ?? error }, 'internal error');
      },
    }),
  );

  app.use((req, res) => sendError(res, 'NOT_FOUND', `no route ${req.method} ${req.path}`, stateOf(req).requestId));
  app.use(errorHandler);
  return app;
}
