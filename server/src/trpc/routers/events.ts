import type { Operations } from '../../api/operations';
import { mutationOf, queryOf } from '../procedure';
import { router } from '../trpc';

/** `events.*`: ingestion and queries. */
export function eventsRouter(o: Operations) {
  return router({
    create: mutationOf(o.eventsCreate),
    bulkCreate: mutationOf(o.eventsBulkCreate),
    query: queryOf(o.eventsQuery),
    getById: queryOf(o.eventsGetById),
    stats: queryOf(o.eventsStats),
  });
}
