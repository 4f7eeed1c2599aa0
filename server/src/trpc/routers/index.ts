import { router } from '../trpc';
import { apiKeysRouter } from './api-keys';
import { eventsRouter } from './events';
import { ledgerRouter } from './ledger';

/** The whole tRPC API. */
export const appRouter = router({
  events: eventsRouter,
  ledger: ledgerRouter,
  apiKeys: apiKeysRouter,
});

/** The type frontends import (type only) for a fully typed client. */
export type AppRouter = typeof appRouter;
