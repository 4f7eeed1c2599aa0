import { tracked } from '@trpc/server';
import { z } from 'zod';
import { recordRead } from '../../api/accountability';
import { can } from '../../auth/permissions';
import { AppError } from '../../errors';
import { alertsViewOf, parseLastEventId, recordViewOf } from '../../api/live';
import { permitted, router } from '../trpc';

/**
 * `streams.events`: the live stream of new events and alert changes of the caller's organization
 * as a tRPC subscription (SSE, `httpSubscriptionLink`). Every item is `tracked` with the last leaf
 * index sent, so the link resumes with `lastEventId` after a reconnect; the same hub as
 * `GET /api/v1/events/stream`.
 */
const events = permitted('audit.events:read')
  .input(
    z
      .strictObject({
        lastEventId: z.string().nullish().describe('the last leaf index received (set by the link on reconnect)'),
        alerts: z.boolean().default(true).describe('also stream alert changes (with audit.securityAlerts:read)'),
      })
      .default({ alerts: true }),
  )
  .subscription(async function* ({ ctx, input, signal }) {
    const hub = ctx.services.streams;
    if (!hub) throw new AppError('UNAVAILABLE', 'live streams are off on this server (STREAM_MAX_CLIENTS=0)');
    const lastEventId = parseLastEventId(input.lastEventId ?? null);
    const alerts = input.alerts && can(ctx.principal.role, 'audit.securityAlerts:read');
    await recordRead(ctx, 'read', 'streams.events', { lastEventId, alerts });
    const sub = await hub.subscribe(ctx.principal.organizationId, { lastEventId, alerts, view: recordViewOf(ctx), alertsView: alertsViewOf(ctx) });
    signal?.addEventListener('abort', () => sub.close('client closed'));
    try {
      for (;;) {
        const item = await sub.next();
        if (!item) break;
        yield tracked(String(sub.lastEventId), item);
      }
      if (sub.closedReason !== 'client closed') throw new AppError('UNAVAILABLE', `stream closed: ${sub.closedReason}`);
    } finally {
      sub.close('client closed');
    }
  });

/** `streams.*`: live streams. */
export function streamsRouter() {
  return router({ events });
}
