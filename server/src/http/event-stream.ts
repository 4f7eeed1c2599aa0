/**
 * `GET /api/v1/events/stream`: new events (and alert changes) of the caller's organization as
 * Server-Sent Events (docs/alerts.md §8). Each event carries `id: <leaf index>`, so a
 * client that reconnects with `Last-Event-ID` (or `?lastEventId=`) resumes right after it; alert
 * changes come as `event: alert` without an id. A slow client is disconnected with
 * `event: close` and the reason (streams/hub.ts); opening a stream is an audited read.
 */
import { once } from 'node:events';
import { Router, type Request, type Response } from 'express';
import { recordRead } from '../api/accountability';
import type { AuthedContext } from '../api/context';
import { alertsViewOf, parseLastEventId, recordViewOf } from '../api/live';
import { can } from '../auth/permissions';
import type { StreamHub } from '../streams/hub';
import { requireAccess, stateOf } from './middleware';

/** The SSE route over `hub` (heartbeat every `heartbeatMs`). */
export function eventStreamRouter(hub: StreamHub, heartbeatMs: number): Router {
  const r = Router();
  r.get('/events/stream', requireAccess('audit.events:read'), async (req: Request, res: Response) => {
    const state = stateOf(req);
    const ctx: AuthedContext = { ...state, principal: state.principal! };
    const lastEventId = parseLastEventId(req.get('last-event-id') ?? req.query.lastEventId);
    const alerts = req.query.alerts !== 'false' && can(ctx.principal.role, 'audit.securityAlerts:read');
    await recordRead(ctx, 'read', 'events.stream', { lastEventId, alerts });
    const sub = await hub.subscribe(ctx.principal.organizationId, { lastEventId, alerts, view: recordViewOf(ctx), alertsView: alertsViewOf(ctx) });
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no', // nginx: never buffer this response
    });
    res.write(`retry: 3000\n: streaming from leaf ${sub.cursor}\n\n`);
    const heartbeat = setInterval(() => {
      if (!res.writableNeedDrain) res.write(': ping\n\n');
    }, heartbeatMs);
    const ended = new Promise<void>((resolve) => sub.onClose(() => resolve()));
    res.on('close', () => sub.close('client closed'));
    try {
      for (;;) {
        const item = await sub.next();
        if (!item) break;
        const chunk =
          item.type === 'event'
            ? `id: ${item.leafIndex}\nevent: event\ndata: ${JSON.stringify(item.event)}\n\n`
            : `event: alert\ndata: ${JSON.stringify({ change: item.change, alert: item.alert })}\n\n`;
        if (!res.write(chunk)) await Promise.race([once(res, 'drain'), ended]);
      }
    } catch (err) {
      sub.close('internal error');
      state.logger.error({ err }, 'live stream failed');
    } finally {
      clearInterval(heartbeat);
    }
    const reason = sub.closedReason ?? 'closed';
    if (reason !== 'client closed' && !res.destroyed) {
      res.end(`event: close\ndata: ${JSON.stringify({ reason })}\n\n`);
      // A client that does not read cannot take the rest: cut it after a grace period.
      setTimeout(() => res.destroy(), 5_000).unref();
    }
  });
  return r;
}
