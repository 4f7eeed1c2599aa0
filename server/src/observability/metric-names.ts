/**
 * Names of every metric the server exposes at `/metrics`. The manifests' PrometheusRule is
 * checked against this list, so an alert can never reference a metric that does not exist.
 */
export const METRIC_NAMES = {
  httpRequestsTotal: 'http_requests_total',
  httpRequestDurationSeconds: 'http_request_duration_seconds',
  eventsIngestedTotal: 'audit_events_ingested_total',
  ingestBatchSize: 'audit_ingest_batch_size',
  ingestRejectedTotal: 'audit_events_rejected_total',
  ingestHookFailuresTotal: 'audit_ingest_hook_failures_total',
  ledgerTreeSize: 'audit_ledger_tree_size',
  ledgerVerificationFailuresTotal: 'audit_ledger_verification_failures_total',
  ledgerLastVerificationSuccessTimestamp: 'audit_ledger_last_verification_success_timestamp_seconds',
  witnessPublicationsTotal: 'audit_witness_publications_total',
  cacheRequestsTotal: 'audit_cache_requests_total',
  cacheErrorsTotal: 'audit_cache_errors_total',
  redisUp: 'audit_redis_up',
  databaseUp: 'audit_database_up',
  dbQueryDurationSeconds: 'audit_db_query_duration_seconds',
  dbPoolConnections: 'audit_db_pool_connections',
  dbPoolWaiting: 'audit_db_pool_waiting_clients',
  dbPoolMax: 'audit_db_pool_max_connections',
  jobQueueDepth: 'audit_job_queue_depth',
  jobDurationSeconds: 'audit_job_duration_seconds',
  jobFailuresTotal: 'audit_job_failures_total',
  deliveryBatchesTotal: 'audit_delivery_batches_total',
  deliveryLagSeconds: 'audit_delivery_lag_seconds',
  deliveryBacklogEvents: 'audit_delivery_backlog_events',
  ledgerOutboxDepth: 'audit_ledger_outbox_depth',
  ledgerOutboxOldestAgeSeconds: 'audit_ledger_outbox_oldest_age_seconds',
  ledgerOutboxSetAside: 'audit_ledger_outbox_set_aside',
  ledgerOutboxEnqueuedTotal: 'audit_ledger_outbox_enqueued_total',
  ledgerOutboxDrainedTotal: 'audit_ledger_outbox_drained_total',
  ledgerOutboxFailuresTotal: 'audit_ledger_outbox_failures_total',
} as const;

/** Prefix of Node.js process metrics from prom-client's default collectors. */
export const PROCESS_METRIC_PREFIX = 'process_';
