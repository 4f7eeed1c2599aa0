import type { Operations } from '../../api/operations';
import { mutationOf, queryOf } from '../procedure';
import { router } from '../trpc';

/** `analytics.*`: similar events, principal baselines, anomalies and the organization's threshold (docs/analytics.md). */
export function analyticsRouter(o: Operations) {
  return router({
    similar: queryOf(o.analyticsSimilar),
    principalBaseline: queryOf(o.analyticsPrincipalBaseline),
    anomalies: queryOf(o.analyticsAnomalies),
    settings: queryOf(o.analyticsSettings),
    setThreshold: mutationOf(o.analyticsSetThreshold),
  });
}
