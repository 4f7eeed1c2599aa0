/** What both live-stream adapters (SSE and the tRPC subscription) and the alert operations share. */
import { subjectIdentifier, type AlertView } from '../alerts/service';
import { AppError } from '../errors';
import type { EventRecord } from '../events/schema';
import { replaceIdentifiers } from '../privacy/identifiers';
import type { AlertsView, RecordView } from '../streams/hub';
import type { AuthedContext } from './context';

/** Parses a Last-Event-ID (a leaf index, or -1 before the first). */
export function parseLastEventId(value: unknown): number | null {
  if (value === undefined || value === null || value === '') return null;
  if (typeof value !== 'string' || !/^(-1|\d{1,15})$/.test(value)) {
    throw new AppError('BAD_REQUEST', 'Last-Event-ID must be a leaf index', [{ path: 'lastEventId', message: 'a leaf index (decimal), or -1' }]);
  }
  return Number(value);
}

/** The caller's view of event records (pseudonyms for those who do not see identifiers). */
export function recordViewOf(ctx: AuthedContext): RecordView {
  return async (records: EventRecord[]) => {
    const view = await ctx.services.privacy.viewFor(ctx.principal);
    if (!view.pseudonymous) return records;
    const out = records.map((r) => view.apply(r));
    await view.flush();
    return out;
  };
}


/**
 * Alerts as the caller may see them: a caller without `privacy.pseudonyms:resolve` sees the
 * person an alert names (its subject, the same identifier inside its context) and who
 * acknowledged or closed it as pseudonyms, as in event reads (docs/privacy.md §4).
 */
export async function alertsAsSeenBy(ctx: AuthedContext, alerts: AlertView[]): Promise<AlertView[]> {
  const view = await ctx.services.privacy.viewFor(ctx.principal);
  if (!view.pseudonymous) return alerts;
  const shown = alerts.map((a) => {
    const named = subjectIdentifier(a.subject);
    const ids = new Map<string, string>();
    if (named) ids.set(named.id, view.pseudonym(named.id));
    for (const by of [a.acknowledgedBy, a.closedBy]) if (by !== null && !ids.has(by)) ids.set(by, view.pseudonym(by));
    const as = (v: string | null) => (v === null ? null : (ids.get(v) ?? v));
    return {
      ...a,
      subject: named ? `${named.kind}:${ids.get(named.id)!}` : a.subject,
      context: replaceIdentifiers(a.context, ids) as Record<string, unknown>,
      acknowledgedBy: as(a.acknowledgedBy),
      closedBy: as(a.closedBy),
    };
  });
  await view.flush();
  return shown;
}

/** The caller's view of the alert changes a live stream carries. */
export function alertsViewOf(ctx: AuthedContext): AlertsView {
  return (alerts) => alertsAsSeenBy(ctx, alerts);
}
