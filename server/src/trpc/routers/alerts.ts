import type { Operations } from '../../api/operations';
import { mutationOf, queryOf } from '../procedure';
import { router } from '../trpc';

/** `alerts.*`: security alerts and their lifecycle (docs/alerts.md). */
export function alertsRouter(o: Operations) {
  return router({
    list: queryOf(o.alertsList),
    get: queryOf(o.alertsGet),
    stats: queryOf(o.alertsStats),
    settings: queryOf(o.alertsSettings),
    updateSettings: mutationOf(o.alertsUpdateSettings),
    acknowledge: mutationOf(o.alertsAcknowledge),
    resolve: mutationOf(o.alertsResolve),
    dismiss: mutationOf(o.alertsDismiss),
  });
}
