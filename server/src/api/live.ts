/** What both live-stream adapters (SSE and the tRPC subscription) share. */
import { AppError } from '../errors';
import type { EventRecord } from '../events/schema';
import type { RecordView } from '../streams/hub';
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

