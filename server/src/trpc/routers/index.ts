import type { Operations } from '../../api/operations';
import { mutationOf, queryOf } from '../procedure';
import { router } from '../trpc';
import { alertsRouter } from './alerts';
import { streamsRouter } from './streams';
import { analyticsRouter } from './analytics';
import { apiKeysRouter } from './api-keys';
import { deliveriesRouter, destinationsRouter } from './delivery';
import { eventsRouter } from './events';
import { ledgerRouter } from './ledger';
import { legalHoldsRouter, privacyRouter, retentionRouter } from './privacy';
import { reportsRouter } from './reports';

/** The whole tRPC API, built from the operation table (which carries the configured limits). */
export function createAppRouter(operations: Operations) {
  return router({
    account: router({ me: queryOf(operations.accountMe) }),
    members: router({
      list: queryOf(operations.membersList),
      add: mutationOf(operations.membersAdd),
      remove: mutationOf(operations.membersRemove),
    }),
    events: eventsRouter(operations),
    ledger: ledgerRouter(operations),
    apiKeys: apiKeysRouter(operations),
    privacy: privacyRouter(operations),
    legalHolds: legalHoldsRouter(operations),
    reports: reportsRouter(operations),
    alerts: alertsRouter(operations),
    destinations: destinationsRouter(operations),
    deliveries: deliveriesRouter(operations),
    streams: streamsRouter(),
    analytics: analyticsRouter(operations),
    retention: retentionRouter(operations),
  });
}

/** The type frontends import (type only) for a fully typed client. */
export type AppRouter = ReturnType<typeof createAppRouter>;
