/**
 * The Prometheus registry: HTTP, ingest and ledger metrics plus Node process metrics. Names come
 * from metric-names.ts so dashboards and alert rules can be checked against them.
 */
import client from 'prom-client';
import type { DatabaseObserver, PoolStats } from '../db/client';
import { METRIC_NAMES } from './metric-names';

/** The ledger outbox at one moment (events/outbox.ts's OutboxStats). */
interface OutboxStatsView {
  pending: number;
  oldestAgeSeconds: number;
  setAside: number;
}

/** All metrics of one server process. */
export class Metrics {
  readonly registry = new client.Registry();
  readonly httpRequests = new client.Counter({
    name: METRIC_NAMES.httpRequestsTotal,
    help: 'HTTP requests by method, route and status code',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly httpDuration = new client.Histogram({
    name: METRIC_NAMES.httpRequestDurationSeconds,
    help: 'HTTP request duration in seconds',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly eventsIngested = new client.Counter({
    name: METRIC_NAMES.eventsIngestedTotal,
    help: 'Events appended to a ledger (acknowledged after COMMIT)',
    registers: [this.registry],
  });
  readonly eventsRejected = new client.Counter({
    name: METRIC_NAMES.ingestRejectedTotal,
    help: 'Events rejected by validation',
    registers: [this.registry],
  });
  readonly ingestHookFailures = new client.Counter({
    name: METRIC_NAMES.ingestHookFailuresTotal,
    help: 'After-COMMIT ingest hooks (detectors, live streams, metrics, witnessing) that threw; the appends stood',
    labelNames: ['hook'] as const,
    registers: [this.registry],
  });
  readonly ingestBatchSize = new client.Histogram({
    name: METRIC_NAMES.ingestBatchSize,
    help: 'Events per group-commit transaction',
    buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000],
    registers: [this.registry],
  });
  readonly ledgerVerificationFailures = new client.Counter({
    name: METRIC_NAMES.ledgerVerificationFailuresTotal,
    help: 'Self-audit runs that found a ledger inconsistency',
    registers: [this.registry],
  });
  readonly ledgerLastVerificationSuccess = new client.Gauge({
    name: METRIC_NAMES.ledgerLastVerificationSuccessTimestamp,
    help: 'Unix time of the last self-audit run that found no inconsistency',
    registers: [this.registry],
  });
  readonly witnessPublications = new client.Counter({
    name: METRIC_NAMES.witnessPublicationsTotal,
    help: 'Checkpoint publications to witness destinations by destination kind and result (ok, retry, failed)',
    labelNames: ['destination', 'result'] as const,
    registers: [this.registry],
  });
  readonly ledgerTreeSize = new client.Gauge({
    name: METRIC_NAMES.ledgerTreeSize,
    help: 'leaves in each organization\'s log as of the last append this process committed (take the max across replicas)',
    labelNames: ['organization'] as const,
    registers: [this.registry],
  });
  readonly databaseUp = new client.Gauge({
    name: METRIC_NAMES.databaseUp,
    help: '1 when the last readiness check reached the database',
    registers: [this.registry],
  });
  readonly redisUp = new client.Gauge({
    name: METRIC_NAMES.redisUp,
    help: '1 when the last readiness check reached Redis (absent without Redis)',
    registers: [this.registry],
  });

  readonly dbQueryDuration = new client.Histogram({
    name: METRIC_NAMES.dbQueryDurationSeconds,
    help: 'PostgreSQL query duration in seconds, by outcome (ok, error); absent on PGlite',
    labelNames: ['outcome'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  private poolStats: () => PoolStats | undefined = () => undefined;
  readonly dbPoolConnections = new client.Gauge({
    name: METRIC_NAMES.dbPoolConnections,
    help: 'PostgreSQL pool connections by state (idle, active) at scrape time',
    labelNames: ['state'] as const,
    registers: [this.registry],
    collect: () => {
      const s = this.poolStats();
      if (!s) return;
      this.dbPoolConnections.set({ state: 'idle' }, s.idle);
      this.dbPoolConnections.set({ state: 'active' }, s.total - s.idle);
    },
  });
  readonly dbPoolWaiting = new client.Gauge({
    name: METRIC_NAMES.dbPoolWaiting,
    help: 'Callers waiting for a PostgreSQL pool connection at scrape time (saturation)',
    registers: [this.registry],
    collect: () => {
      const s = this.poolStats();
      if (s) this.dbPoolWaiting.set(s.waiting);
    },
  });
  readonly dbPoolMax = new client.Gauge({
    name: METRIC_NAMES.dbPoolMax,
    help: 'Size limit of the PostgreSQL pool (DATABASE_POOL_MAX)',
    registers: [this.registry],
    collect: () => {
      const s = this.poolStats();
      if (s) this.dbPoolMax.set(s.max);
    },
  });

  readonly cacheRequests = new client.Counter({
    name: METRIC_NAMES.cacheRequestsTotal,
    help: 'Read-cache look-ups by cache and result (hit, miss); hit ratio = hit / (hit + miss)',
    labelNames: ['cache', 'result'] as const,
    registers: [this.registry],
  });
  readonly cacheErrors = new client.Counter({
    name: METRIC_NAMES.cacheErrorsTotal,
    help: 'Read-cache failures by cache (or invalidation group) and operation (read, write, invalidate); the request was served from the database',
    labelNames: ['cache', 'operation'] as const,
    registers: [this.registry],
  });

  private jobCounts: () => Promise<Record<string, Record<string, number>>> = () => Promise.resolve({});
  readonly jobQueueDepth = new client.Gauge({
    name: METRIC_NAMES.jobQueueDepth,
    help: 'Jobs per queue and state (waiting, delayed, active, completed, failed) at scrape time; with Redis every replica reports the same shared queues',
    labelNames: ['queue', 'state'] as const,
    registers: [this.registry],
    collect: async () => {
      let counts: Record<string, Record<string, number>>;
      try {
        counts = await this.jobCounts();
      } catch {
        return; // Redis unreachable: audit_redis_up says so; keep the last values
      }
      for (const [queue, states] of Object.entries(counts)) {
        for (const [state, n] of Object.entries(states)) this.jobQueueDepth.set({ queue, state }, n);
      }
    },
  });
  readonly jobDuration = new client.Histogram({
    name: METRIC_NAMES.jobDurationSeconds,
    help: 'Duration of job attempts in seconds, by queue and outcome (ok, retry, failed)',
    labelNames: ['queue', 'outcome'] as const,
    buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900],
    registers: [this.registry],
  });
  readonly jobFailures = new client.Counter({
    name: METRIC_NAMES.jobFailuresTotal,
    help: 'Failed job attempts by queue and outcome (retry: another attempt follows; failed: moved to the failed set)',
    labelNames: ['queue', 'outcome'] as const,
    registers: [this.registry],
  });

  /** Observer for the job queue. */
  readonly jobObserver = {
    finished: (queue: string, seconds: number, outcome: 'ok' | 'retry' | 'failed') => {
      this.jobDuration.observe({ queue, outcome }, seconds);
      if (outcome !== 'ok') this.jobFailures.inc({ queue, outcome });
    },
  };

  readonly deliveryBatches = new client.Counter({
    name: METRIC_NAMES.deliveryBatchesTotal,
    help: 'Delivery batches by destination kind and result (ok; retry: will be sent again; dead: moved to the dead letters)',
    labelNames: ['kind', 'result'] as const,
    registers: [this.registry],
  });
  readonly deliveryLag = new client.Gauge({
    name: METRIC_NAMES.deliveryLagSeconds,
    help: 'Age in seconds of the oldest event not yet delivered to each destination (0 when caught up), as of the last delivery sweep',
    labelNames: ['destination'] as const,
    registers: [this.registry],
  });
  readonly deliveryBacklog = new client.Gauge({
    name: METRIC_NAMES.deliveryBacklogEvents,
    help: 'Events not yet delivered to each destination, as of the last delivery sweep',
    labelNames: ['destination'] as const,
    registers: [this.registry],
  });

  private outboxStats: (() => Promise<OutboxStatsView>) | null = null;
  private outboxScrape: Promise<OutboxStatsView | null> | null = null;
  /** One query per scrape for the three outbox gauges (each gauge's collect joins it). */
  private scrapeOutbox() {
    const stats = this.outboxStats;
    if (!stats) return Promise.resolve(null);
    this.outboxScrape ??= stats()
      .catch(() => null) // database unreachable: audit_database_up says so; keep the last values
      .finally(() => setImmediate(() => (this.outboxScrape = null)));
    return this.outboxScrape;
  }
  /** A gauge of the ledger outbox, set at every scrape from one shared query. */
  private outboxGauge(name: string, help: string, value: (s: OutboxStatsView) => number): client.Gauge {
    const gauge: client.Gauge = new client.Gauge({
      name,
      help,
      registers: [this.registry],
      collect: async () => {
        const s = await this.scrapeOutbox();
        if (s) gauge.set(value(s));
      },
    });
    return gauge;
  }
  readonly ledgerOutboxDepth = this.outboxGauge(
    METRIC_NAMES.ledgerOutboxDepth,
    'Ledger outbox rows waiting to be appended (events of workers without the signing key) at scrape time; every process reports the same table',
    (s) => s.pending,
  );
  readonly ledgerOutboxOldestAge = this.outboxGauge(
    METRIC_NAMES.ledgerOutboxOldestAgeSeconds,
    'Age in seconds of the oldest ledger outbox row waiting to be appended (0 when none waits) at scrape time',
    (s) => s.oldestAgeSeconds,
  );
  readonly ledgerOutboxSetAside = this.outboxGauge(
    METRIC_NAMES.ledgerOutboxSetAside,
    'Ledger outbox rows set aside (their event failed validation or was refused by the database: never appended) at scrape time',
    (s) => s.setAside,
  );
  readonly ledgerOutboxEnqueued = new client.Counter({
    name: METRIC_NAMES.ledgerOutboxEnqueuedTotal,
    help: 'Events this process recorded in the ledger outbox (it holds no signing key)',
    registers: [this.registry],
  });
  readonly ledgerOutboxDrained = new client.Counter({
    name: METRIC_NAMES.ledgerOutboxDrainedTotal,
    help: 'Ledger outbox events this process appended to the log (each row deleted in its append transaction)',
    registers: [this.registry],
  });
  readonly ledgerOutboxFailures = new client.Counter({
    name: METRIC_NAMES.ledgerOutboxFailuresTotal,
    help: 'Ledger outbox rows this process failed to append, by reason (set_aside: never appended; retry: left for a later round)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  /** Reports the ledger outbox (depth, oldest age, set-aside rows) at every scrape. */
  observeLedgerOutbox(stats: () => Promise<OutboxStatsView>): void {
    this.outboxStats = stats;
  }

  /** Observer for the ledger outbox drainer. */
  readonly outboxObserver = {
    drained: (n: number) => this.ledgerOutboxDrained.inc(n),
    failed: (reason: 'set_aside' | 'retry', n: number) => this.ledgerOutboxFailures.inc({ reason }, n),
  };

  /** Observer for deliveries. */
  readonly deliveryObserver = {
    delivered: (_destination: string, kind: string) => this.deliveryBatches.inc({ kind, result: 'ok' }),
    failed: (_destination: string, kind: string, final: boolean) => this.deliveryBatches.inc({ kind, result: final ? 'dead' : 'retry' }),
    lag: (destination: string, seconds: number, backlog: number) => {
      this.deliveryLag.set({ destination }, seconds);
      this.deliveryBacklog.set({ destination }, backlog);
    },
  };

  /** Reports the job queue's depth at every scrape. */
  observeJobQueue(counts: () => Promise<Record<string, Record<string, number>>>): void {
    this.jobCounts = counts;
  }

  /** Observer for the read cache. */
  readonly cacheObserver = {
    hit: (cache: string) => this.cacheRequests.inc({ cache, result: 'hit' }),
    miss: (cache: string) => this.cacheRequests.inc({ cache, result: 'miss' }),
    error: (cache: string, operation: 'read' | 'write' | 'invalidate') => this.cacheErrors.inc({ cache, operation }),
  };

  constructor() {
    client.collectDefaultMetrics({ register: this.registry });
  }

  /** Observer for the PostgreSQL client: every query's duration and outcome. */
  readonly databaseObserver: DatabaseObserver = {
    queryFinished: (seconds, ok) => this.dbQueryDuration.observe({ outcome: ok ? 'ok' : 'error' }, seconds),
  };

  /** Reports the pool of an open database at every scrape. */
  observeDatabasePool(stats: () => PoolStats | undefined): void {
    this.poolStats = stats;
  }

  /** Observer for the ingest service. */
  readonly ingestObserver = {
    batchCommitted: (size: number) => {
      this.eventsIngested.inc(size);
      this.ingestBatchSize.observe(size);
    },
    /** Set on every commit: the checkpoint's size is the tree size, known without a query. */
    checkpointCommitted: (org: string, treeSize: number) => {
      this.ledgerTreeSize.set({ organization: org }, treeSize);
    },
  };
}
