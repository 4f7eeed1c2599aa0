import type { Operations } from '../../api/operations';
import { router } from '../trpc';
import { apiKeysRouter } from './api-keys';
import { eventsRouter } from './events';
import { ledgerRouter } from './ledger';

/** The whole tRPC API, built from the operation table (which carries the configured limits). */
export function createAppRouter(operations: Operations) {
  return router({
    events: eventsRouter(operations),
    ledger: ledgerRouter(operations),
    apiKeys: apiKeysRouter(operations),
  });
}

/** The type frontends import (type only) for a fully typed client. */
export type AppRouter = ReturnType<typeof createAppRouter>;
