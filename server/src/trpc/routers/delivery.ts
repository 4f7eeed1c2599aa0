import type { Operations } from '../../api/operations';
import { mutationOf, queryOf } from '../procedure';
import { router } from '../trpc';

/** `destinations.*`: SIEM and webhook destinations (docs/delivery.md). */
export function destinationsRouter(o: Operations) {
  return router({
    list: queryOf(o.destinationsList),
    get: queryOf(o.destinationsGet),
    create: mutationOf(o.destinationsCreate),
    update: mutationOf(o.destinationsUpdate),
    rotateSecret: mutationOf(o.destinationsRotateSecret),
    delete: mutationOf(o.destinationsDelete),
  });
}

/** `deliveries.*`: dead letters and their replay. */
export function deliveriesRouter(o: Operations) {
  return router({
    deadLetters: queryOf(o.deliveriesDeadLetters),
    replay: mutationOf(o.deliveriesReplay),
  });
}
