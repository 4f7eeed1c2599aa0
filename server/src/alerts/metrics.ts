/**
 * Metrics of the detectors and alerts, registered on the server's registry (names listed in
 * docs/alerts.md).
 */
import client from 'prom-client';
import type { DetectorObserver } from './engine';

/** Registers the alert metrics on `registry` and returns the engine's observer feeding them. */
export function alertMetrics(registry: client.Registry, onFailure: (err: unknown) => void): DetectorObserver & { windowStoreErrors: client.Counter } {
  const raised = new client.Counter({
    name: 'audit_alerts_raised_total',
    help: 'Alerts raised by the detectors on ingest, by detector and whether a new alert was opened (created) or an open one added to',
    labelNames: ['detector', 'created'] as const,
    registers: [registry],
  });
  const dropped = new client.Counter({
    name: 'audit_detector_events_dropped_total',
    help: 'Committed events the detectors did not evaluate because their queue was full (ALERTS_QUEUE_MAX)',
    registers: [registry],
  });
  const failures = new client.Counter({
    name: 'audit_detector_failures_total',
    help: 'Batches of committed events whose evaluation failed',
    registers: [registry],
  });
  const duration = new client.Histogram({
    name: 'audit_detector_batch_seconds',
    help: 'Time to evaluate one committed batch (settings, windows, raises)',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  });
  const windowStoreErrors = new client.Counter({
    name: 'audit_detector_window_errors_total',
    help: 'Sliding-window updates Redis failed (counted in process instead)',
    registers: [registry],
  });
  return {
    evaluated: (_events, seconds) => duration.observe(seconds),
    dropped: (n) => dropped.inc(n),
    raised: (detector, created) => raised.inc({ detector, created: String(created) }),
    failed: (err) => {
      failures.inc();
      onFailure(err);
    },
    windowStoreErrors,
  };
}
