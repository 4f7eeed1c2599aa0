/**
 * The analytics catch-up as a periodic task (embedding and anomaly detection): registered as a
 * repeatable job by the runtime (one run per interval however many workers there are), and
 * callable on demand. Runs in one process never overlap; a run continues while work is left.
 */
import type { RaiseInput } from '../alerts/service';
import type { Logger } from '../observability/logger';
import type { AnalyticsService, AnomalyAlert, AnomalySink, CatchUpResult } from './service';

/** The catch-up task of one process. */
export interface AnalyticsWorker {
  /** Runs until nothing is left (or joins the run in progress); a failure rejects (the job retries it). */
  runOnce(): Promise<CatchUpResult>;
  /** Lets a run in progress finish its batch and waits for it. */
  stop(): Promise<void>;
}

/** The catch-up task: `service.catchUp(sink)` repeated while it reports work left. */
export function createAnalyticsWorker(service: AnalyticsService, sink: AnomalySink | null, logger: Logger): AnalyticsWorker {
  let running: Promise<CatchUpResult> | null = null;
  let stopped = false;
  const runOnce = (): Promise<CatchUpResult> =>
    (running ??= (async () => {
      const total: CatchUpResult = { embedded: 0, organizations: 0, anomalies: 0, more: false };
      try {
        for (;;) {
          const r = await service.catchUp(sink);
          total.embedded += r.embedded;
          total.organizations = Math.max(total.organizations, r.organizations);
          total.anomalies += r.anomalies;
          total.more = r.more;
          if (!r.more || stopped) break;
        }
        if (total.embedded > 0) logger.info({ embedded: total.embedded, anomalies: total.anomalies }, 'events embedded for analytics');
        return total;
      } finally {
        running = null;
      }
    })());
  return {
    runOnce,
    async stop() {
      stopped = true;
      await running?.catch(() => undefined);
    },
  };
}

/** The detector name of behaviour anomalies in the security alerts (docs/alerts.md). */
export const ANOMALY_DETECTOR = 'behaviour_anomaly';

/**
 * What the anomaly detector raises through the alerts service: one open alert per principal
 * (`principal:<id>`; further anomalies of the principal add their event ids to it), with the
 * event, its score, the baseline and the nearest normal events in the context.
 */
export function anomalyAlertInput(alert: AnomalyAlert): RaiseInput {
  const a = alert.anomaly;
  return {
    detector: ANOMALY_DETECTOR,
    subject: `principal:${a.principalId ?? 'unknown'}`,
    eventIds: [a.eventId],
    severity: 'high',
    title: 'Behaviour unlike the principal’s baseline',
    context: {
      event: { eventId: a.eventId, recordedAt: a.recordedAt, action: a.action, status: a.status, targetResourceType: a.targetResourceType },
      distance: a.distance,
      score: a.score,
      threshold: alert.threshold,
      baseline: alert.baseline,
      nearestNormal: alert.nearestNormal,
      dedupeKey: alert.dedupeKey,
    },
  };
}

/** The detector's sink: raises each anomaly through `raise` (the alerts service) and logs ids and score (never event values). */
export function raiseAnomalies(raise: (org: string, input: RaiseInput) => Promise<unknown>, logger: Logger): AnomalySink {
  return async (alert) => {
    await raise(alert.organizationId, anomalyAlertInput(alert));
    logger.warn(
      { organizationId: alert.organizationId, eventId: alert.anomaly.eventId, score: Number(alert.anomaly.score.toFixed(2)), threshold: alert.threshold },
      'behaviour anomaly',
    );
  };
}
