/**
 * Builds a running server from a configuration: database (migrated), Redis, signer, services,
 * HTTP app, and the worker's periodic upkeep. main.ts and the tests both use it.
 */
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type express from 'express';
import type { Express } from 'express';
import type Redis from 'ioredis';
import { AnalyticsService } from './analytics/service';
import { createAnalyticsWorker, raiseAnomalies, type AnalyticsWorker } from './analytics/worker';
import type { Services } from './api/context';
import { DetectorEngine } from './alerts/engine';
import { alertMetrics } from './alerts/metrics';
import { pseudonymizeAlertsOf } from './alerts/repository';
import { AlertService } from './alerts/service';
import { MemoryWindowStore, RedisWindowStore } from './alerts/windows';
import { MemoryStreamBus, RedisStreamBus } from './streams/bus';
import { StreamHub } from './streams/hub';
import { SelfAuditor } from './audit/self-audit';
import { AuditService } from './audit/service';
import { DirectoryWitness, HttpWitness, WitnessPublisher, type WitnessDestination } from './audit/witness';
import { ApiKeyService } from './auth/api-keys';
import { IdentityService } from './auth/identity';
import { LoginLimiter } from './auth/login-limiter';
import { OidcVerifier } from './auth/oidc';
import { isRole, type Role } from './auth/permissions';
import { memorySessionStore, redisSessionStore } from './auth/session-store';
import { bootstrap, type BootstrapResult } from './auth/organizations';
import { CACHES, cacheServices, invalidateSigningKeys } from './api/cached-services';
import { MemoryRateLimiter, RedisRateLimiter, type RateLimiter } from './cache/rate-limiter';
import { MemoryCacheStore, ReadCache, RedisCacheStore } from './cache/read-cache';
import { openRedis, pingRedis, redisEndpointOf } from './cache/redis';
import { checkNoEviction, openJobQueue, registerPeriodicTasks, schedulePeriodicTasks, type JobQueue, type PeriodicTask } from './jobs';
import type * as InngestModule from './jobs/inngest';
import type { Config } from './config';
import { openDatabase, type Database } from './db/client';
import { ensurePartitions, expectedSchemaVersion, migrate } from './db/migrate';
import { IngestService } from './events/ingest';
import { EventService } from './events/service';
import { DeliveryService } from './delivery/service';
import { ExportService } from './export/service';
import { createApp } from './http/app';
import { parseVerifierKey, type Signer, type Verifier } from './ledger';
import { OutboxDrainer, outboxAppend, outboxStats, type Append } from './events/outbox';
import { eventInputSchemaFor } from './events/schema';
import type { Logger } from './observability/logger';
import { within } from './util/within';
import { PrivacyService } from './privacy/service';
import { DirectoryDestination, type ArchiveDestination } from './retention/archive';
import { S3Destination } from './retention/s3';
import { RetentionService } from './retention/service';
import { Metrics } from './observability/metrics';
import { FhirService } from './fhir/service';
import { ReportService } from './reports/service';
import { loadSigner } from './tlog/keys';
import { organizationsWithLedger } from './audit/repository';
import { latestCheckpoint, registerSigningKey, retireOtherKeys } from './tlog/repository';
import { LedgerService } from './tlog/service';

/** A started server. */
export interface Runtime {
  database: Database;
  services: Services;
  ingest: IngestService;
  metrics: Metrics;
  /** The checkpoint signer; null for a `worker` given only verifier keys. */
  signer: Signer | null;
  bootstrap: BootstrapResult | null;
  /** The continuous self-audit (worker role), to run on demand in tests and tools. */
  selfAudit: SelfAuditor | null;
  /** Checkpoint publication to witnesses, when configured. */
  witness: WitnessPublisher | null;
  /** The job queue (periodic tasks, deliveries). */
  jobs: JobQueue;
  /** Security alerts (docs/alerts.md). */
  alerts: AlertService;
  /** The detectors evaluated on ingest; null when ALERTS_DETECTORS_ENABLED is off. */
  detectors: DetectorEngine | null;
  /** The analytics catch-up task (also a periodic job), to run on demand in tests and tools. */
  analyticsWorker: AnalyticsWorker;
  /** The ledger outbox drainer (processes holding the signing key), to run on demand in tests and tools. */
  outbox: OutboxDrainer | null;
  /** Base URL once listening (http://host:port). */
  url: string;
  /** The Express application being served (tests walk its routes). */
  app: Express;
  /** Graceful stop: refuse new work, drain appends, close connections and pools. */
  close(): Promise<void>;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Users and sign-in (AUTH_*). Sessions go to Redis when configured so every replica shares them;
 * without AUTH_SECRET sign-in is off in production and uses a per-process secret elsewhere.
 */
export function createIdentity(config: Config, database: Database, redis: Redis | null, logger: Logger): IdentityService | null {
  let secret = config.AUTH_SECRET;
  if (!secret) {
    if (config.NODE_ENV === 'production') {
      logger.warn('AUTH_SECRET is not set: sign-in at /auth is off (API keys and OIDC tokens still work)');
      return null;
    }
    secret = randomBytes(32).toString('base64url');
  }
  return new IdentityService(database, {
    secret,
    baseURL: config.AUTH_BASE_URL,
    trustedOrigins: [...config.CORS_ORIGINS, ...(config.AUTH_BASE_URL ? [new URL(config.AUTH_BASE_URL).origin] : [])],
    secureCookies: config.AUTH_SECURE_COOKIES,
    signUpEnabled: config.AUTH_SIGN_UP_ENABLED,
    sessionTtlSeconds: config.AUTH_SESSION_TTL_SECONDS,
    store: redis ? redisSessionStore(redis) : memorySessionStore(),
    logger,
  });
}

function oidcOptions(config: Config) {
  const roleMap: Record<string, Role> = {};
  for (const pair of config.AUTH_OIDC_ROLE_MAP) {
    const i = pair.lastIndexOf('=');
    const role = pair.slice(i + 1);
    if (isRole(role)) roleMap[pair.slice(0, i)] = role;
  }
  return {
    issuer: config.AUTH_OIDC_ISSUER!,
    audience: config.AUTH_OIDC_AUDIENCE!,
    organizationClaim: config.AUTH_OIDC_ORGANIZATION_CLAIM,
    roleClaim: config.AUTH_OIDC_ROLE_CLAIM,
    roleMap,
    algorithms: config.AUTH_OIDC_ALGORITHMS,
    jwksCooldownMs: config.AUTH_OIDC_JWKS_COOLDOWN_MS,
    clockToleranceSeconds: 5,
  };
}

/**
 * Publishes every log's latest checkpoint to the witnesses again (the `witness-publication` task):
 * a witness that missed publications — an outage longer than the retries, a restart that dropped
 * the in-memory queue — catches up, and a directory witness that already holds it is unchanged.
 */
async function republishLatest(database: Database, witness: WitnessPublisher): Promise<void> {
  for (const org of await organizationsWithLedger(database.db)) {
    const cp = await latestCheckpoint(database.db, org);
    if (cp) witness.enqueue(org, cp.treeSize, cp.note);
  }
  await witness.flush();
}

/**
 * The key sealing delivery secrets: DELIVERY_SECRET_KEY; outside production a fixed development
 * key (documented: it protects nothing); in production without it, no destination may hold a secret.
 */
function deliverySecretKey(config: Config): Buffer | null {
  if (config.DELIVERY_SECRET_KEY) return Buffer.from(config.DELIVERY_SECRET_KEY, 'base64');
  return config.NODE_ENV === 'production' ? null : createHash('sha256').update('smedrec-audit development delivery key').digest();
}

/** The `/api/inngest` handler, required on first use so the SDK is loaded only when configured. */
function loadInngest(jobs: JobQueue, config: Config, logger: Logger): express.RequestHandler {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { inngestHandler } = require('./jobs/inngest') as typeof InngestModule;
  return inngestHandler(jobs, { signingKey: config.INNGEST_SIGNING_KEY!, logger: logger.child({ component: 'inngest' }), ...(config.INNGEST_BASE_URL ? { baseUrl: config.INNGEST_BASE_URL } : {}) });
}

/** The verifier keys whose checkpoints are genuine: the signer's and the configured ones, never the signing_keys table. */
export function trustedVerifierKeys(config: Config, signer: Signer | null): Verifier[] {
  return [
    ...new Set([
      ...(signer ? [signer.verifierKey] : []),
      ...(config.AUDIT_VERIFIER_KEY !== undefined ? [config.AUDIT_VERIFIER_KEY.trim()] : []),
      ...config.AUDIT_TRUSTED_VERIFIER_KEYS,
    ]),
  ].map((k) => parseVerifierKey(k));
}

/**
 * Where retention archives go (docs/privacy.md §6): RETENTION_ARCHIVE_DIR and/or
 * RETENTION_ARCHIVE_S3_URL. With both, a run records an archive only once every one holds it.
 */
export function archiveDestinations(config: Config): ArchiveDestination[] {
  const out: ArchiveDestination[] = [];
  if (config.RETENTION_ARCHIVE_DIR) out.push(new DirectoryDestination(config.RETENTION_ARCHIVE_DIR));
  if (config.RETENTION_ARCHIVE_S3_URL) {
    out.push(
      new S3Destination({
        url: config.RETENTION_ARCHIVE_S3_URL,
        region: config.RETENTION_ARCHIVE_S3_REGION!,
        endpoint: config.RETENTION_ARCHIVE_S3_ENDPOINT,
        forcePathStyle: config.RETENTION_ARCHIVE_S3_FORCE_PATH_STYLE,
        encryption: config.RETENTION_ARCHIVE_S3_SSE,
        kmsKeyId: config.RETENTION_ARCHIVE_S3_KMS_KEY_ID,
        objectLockDays: config.RETENTION_ARCHIVE_S3_OBJECT_LOCK_DAYS,
        ...(config.RETENTION_ARCHIVE_S3_ACCESS_KEY_ID && config.RETENTION_ARCHIVE_S3_SECRET_ACCESS_KEY
          ? { credentials: { accessKeyId: config.RETENTION_ARCHIVE_S3_ACCESS_KEY_ID, secretAccessKey: config.RETENTION_ARCHIVE_S3_SECRET_ACCESS_KEY } }
          : {}),
      }),
    );
  }
  return out;
}

/**
 * Privacy and retention as every process wires them, the server and `audit-admin retention run`
 * alike, so an erasure made by either empties the same caches and embeddings. Privacy appends
 * through `append` (the server's is cache-wrapped; a process without the signing key records in
 * the ledger outbox instead, see `outboxAppend`), and every erased batch makes the
 * organization's cached event reads unreachable on every replica sharing `cache` (docs/privacy.md).
 */
export function createPrivacyAndRetention(
  config: Config,
  database: Database,
  deps: {
    append: Append;
    originOf: (org: string) => string;
    cache: ReadCache;
    analytics: AnalyticsService;
    verifiers: Verifier[];
  },
  logger: Logger,
): { privacy: PrivacyService; retention: RetentionService } {
  const privacy = new PrivacyService(
    database,
    deps.append,
    { batchSize: config.PRIVACY_ERASURE_BATCH_SIZE, leaseMs: config.PRIVACY_ERASURE_LEASE_MS, waitMs: config.PRIVACY_ERASURE_WAIT_MS },
    logger,
    deps.originOf,
  );
  privacy.erasures.onErased({ afterCommit: (batch) => deps.cache.invalidate(CACHES.event.group, batch.organizationId) });
  // Embeddings are derived from the erased values: recomputed in the erasure's transaction.
  privacy.erasures.onErased(deps.analytics.erasureHooks());
  // Security alerts name their subject (`principal:<id>`): it becomes its pseudonym (docs/alerts.md).
  privacy.erasures.onErased({
    subjectErased: async (s, tx) => void (await pseudonymizeAlertsOf(tx, s.organizationId, s.value, s.pseudonym)),
  });
  const retention = new RetentionService(
    database,
    privacy,
    deps.append,
    {
      destinations: archiveDestinations(config),
      verifiers: deps.verifiers,
      originOf: deps.originOf,
      batchSize: config.PRIVACY_ERASURE_BATCH_SIZE,
      dropPartitions: config.RETENTION_DROP_PARTITIONS,
    },
    logger,
  );
  return { privacy, retention };
}

/** The analytics service as configured (the erasure hooks recompute its embeddings). */
export function createAnalytics(config: Config, database: Database): AnalyticsService {
  return new AnalyticsService(database, {
    batchSize: config.ANALYTICS_BATCH_SIZE,
    maxBatchesPerRun: config.ANALYTICS_MAX_BATCHES_PER_RUN,
    anomalyThreshold: config.ANALYTICS_ANOMALY_THRESHOLD,
    baselineDays: config.ANALYTICS_BASELINE_DAYS,
    minBaselineEvents: config.ANALYTICS_MIN_BASELINE_EVENTS,
  });
}

/** Starts what `config.AUDIT_ROLE` asks for and listens on PORT (0 = ephemeral). */
export async function startRuntime(config: Config, logger: Logger): Promise<Runtime> {
  const metrics = new Metrics();
  const database = await openDatabase({
    url: config.DATABASE_URL,
    dataDir: config.DATABASE_URL ? undefined : config.AUDIT_DATA_DIR,
    poolMax: config.DATABASE_POOL_MAX,
    observer: metrics.databaseObserver,
    connectRetryMs: config.DATABASE_RETRY_MS,
  });
  metrics.observeDatabasePool(() => database.poolStats?.());
  const cleanups: Array<() => Promise<void>> = [() => database.close()];
  try {
    if (config.DATABASE_MIGRATE_ON_START || !config.DATABASE_URL) {
      const applied = await migrate(database);
      if (applied.length > 0) logger.info({ applied }, 'migrations applied');
      await ensurePartitions(database, config.PARTITION_MONTHS_AHEAD);
    }
    // A worker only verifies: with AUDIT_VERIFIER_KEY (or retired keys) and no AUDIT_SIGNING_KEY it
    // never holds the private key. Every other case loads (outside production: creates) the signer.
    const verifiesOnly =
      config.AUDIT_ROLE === 'worker' && !config.AUDIT_SIGNING_KEY && (config.AUDIT_VERIFIER_KEY !== undefined || config.AUDIT_TRUSTED_VERIFIER_KEYS.length > 0);
    const signer = verifiesOnly
      ? null
      : loadSigner(
          {
            signingKey: config.AUDIT_SIGNING_KEY,
            dataDir: config.AUDIT_DATA_DIR,
            keyName: config.AUDIT_LOG_ORIGIN,
            production: config.NODE_ENV === 'production',
          },
          (message) => logger.warn(message),
        );
    if (signer && config.AUDIT_VERIFIER_KEY !== undefined && config.AUDIT_VERIFIER_KEY.trim() !== signer.verifierKey) {
      throw new Error('AUDIT_VERIFIER_KEY is not the verifier key of AUDIT_SIGNING_KEY');
    }
    if (signer) {
      await registerSigningKey(database.db, {
        keyId: signer.keyId.toString('hex'),
        name: signer.name,
        verifierKey: signer.verifierKey,
      });
      // Rotation: the configured key is the active one; every other key's window closes now (once:
      // a trigger forbids reopening it). Their old checkpoints keep verifying (docs/verification.md).
      const retired = await retireOtherKeys(database.db, signer.keyId.toString('hex'));
      if (retired > 0) logger.warn({ retired, active: signer.keyId.toString('hex') }, 'signing key rotated: older keys retired');
    }

    let redis: Redis | null = null;
    const redisEndpoint = redisEndpointOf(config);
    if (redisEndpoint) {
      const r = openRedis(redisEndpoint);
      redis = r;
      r.on('error', (err: Error) => logger.warn({ err: err.message }, 'redis error'));
      // Give Redis a moment to answer, so a server started beside a working Redis is ready at
      // once; past the bound it starts anyway (every Redis use fails fast and degrades) and
      // /ready reports Redis until it answers.
      if (!(await redisReadyWithin(r, REDIS_START_WAIT_MS))) logger.warn({ waitedMs: REDIS_START_WAIT_MS }, 'redis not reachable at start; serving without it until it is');
      cleanups.unshift(async () => {
        r.disconnect();
        return Promise.resolve();
      });
    }

    // The job queue: BullMQ on Redis when configured, in-process otherwise (docs/jobs.md).
    const jobs = openJobQueue(redisEndpoint, config.JOBS_KEY_PREFIX, {
      finished: (queue, seconds, outcome, err) => {
        metrics.jobObserver.finished(queue, seconds, outcome);
        if (outcome !== 'ok') (outcome === 'retry' ? logger.warn.bind(logger) : logger.error.bind(logger))({ queue, err: (err as Error)?.message }, `job ${outcome === 'retry' ? 'attempt failed, will retry' : 'failed'}`);
      },
    });
    metrics.observeJobQueue(() => jobs.counts());
    cleanups.unshift(() => jobs.close());

    const destinations: WitnessDestination[] = [];
    if (config.AUDIT_WITNESS_DIR) destinations.push(new DirectoryWitness(config.AUDIT_WITNESS_DIR));
    if (config.AUDIT_WITNESS_URL) destinations.push(new HttpWitness(config.AUDIT_WITNESS_URL, config.AUDIT_WITNESS_TIMEOUT_MS));
    const witness =
      destinations.length === 0
        ? null
        : new WitnessPublisher(destinations, {
            published: (d) => metrics.witnessPublications.inc({ destination: d.split(':')[0], result: 'ok' }),
            failed: (d, err, willRetry) => {
              metrics.witnessPublications.inc({ destination: d.split(':')[0], result: willRetry ? 'retry' : 'failed' });
              (willRetry ? logger.warn.bind(logger) : logger.error.bind(logger))({ destination: d, err: (err as Error).message }, 'checkpoint witness publication failed');
            },
          });
    const ledger = new LedgerService(database, signer, config.AUDIT_LOG_ORIGIN);
    // Set once the services exist; the ingest hands every committed batch to it (never awaited).
    let detectors: DetectorEngine | null = null;
    // Live streams: every committed batch tells every replica the log's new size (one small
    // notification per batch, Redis pub/sub when configured).
    const streams =
      config.STREAM_MAX_CLIENTS === 0
        ? null
        : new StreamHub(
            database,
            redis ? new RedisStreamBus(redis, config.CACHE_KEY_PREFIX, (err) => logger.warn({ err: (err as Error).message }, 'live stream bus error')) : new MemoryStreamBus(),
            { maxClients: config.STREAM_MAX_CLIENTS, maxLagEvents: config.STREAM_MAX_LAG_EVENTS },
            { disconnected: (reason, slow) => slow && logger.info({ reason }, 'live stream client disconnected') },
          );
    const ingest = new IngestService(
      database,
      ledger,
      { maxBatch: config.INGEST_MAX_BATCH, maxWaitMs: config.INGEST_MAX_WAIT_MS, retryMs: config.DATABASE_RETRY_MS },
      {
        batchCommitted: metrics.ingestObserver.batchCommitted,
        checkpointCommitted: (org, size, note) => {
          metrics.ingestObserver.checkpointCommitted(org, size);
          witness?.enqueue(org, size, note);
        },
        // A code and counts only: the database error itself carries the batch's values.
        appendFailed: (f) => (f.fault === 'input' ? logger.warn.bind(logger) : logger.error.bind(logger))(f, 'append failed'),
        eventsCommitted: (org, appended) => {
          detectors?.observe(org, appended);
          streams?.committed(org, appended);
        },
        // The appends stand (they are committed and acknowledged): count it and name the hook and
        // the error's class only — its message may quote the batch's values.
        hookFailed: (hook, err) => {
          metrics.ingestHookFailures.inc({ hook });
          logger.error({ hook, err: (err as Error)?.name ?? typeof err }, 'ingest hook failed after COMMIT; the appends stand');
        },
      },
    );
    // With Redis, key look-ups are cached by the read cache below (a revocation reaches every
    // replica at once). Without it, an in-process copy would outlive a revocation made elsewhere
    // (another replica, the admin CLI) by the whole read-cache TTL, so the service's own short
    // per-process cache bounds that instead.
    const apiKeys = redis ? new ApiKeyService(database, 0) : new ApiKeyService(database);
    const events = new EventService(database, ingest, ledger);
    const serveApi = config.AUDIT_ROLE === 'api' || config.AUDIT_ROLE === 'all';
    const identity = serveApi ? createIdentity(config, database, redis, logger) : null;
    // The read cache: Redis when configured (shared by every replica), else an in-process LRU.
    const cache = new ReadCache(
      redis ? new RedisCacheStore(redis) : new MemoryCacheStore(config.CACHE_MAX_ENTRIES),
      { ttlSeconds: config.CACHE_TTL_SECONDS, prefix: config.CACHE_KEY_PREFIX },
      metrics.cacheObserver,
    );
    cleanups.unshift(() => Promise.resolve(cache.close()));
    // This process may have registered or retired a signing key: other replicas re-read the keys
    // (once Redis is connected: commands fail fast before that).
    if (signer) {
      if (!redis || redis.status === 'ready') await invalidateSigningKeys(cache);
      else redis.once('ready', () => void invalidateSigningKeys(cache));
    }
    const analytics = createAnalytics(config, database);
    // Keys whose checkpoints are genuine (the self-audit and the integrity report trust these, never the table).
    const trustedVerifiers = trustedVerifierKeys(config, signer);
    // How this process appends its own events (retention, erasure, alerts): directly when it holds
    // the signing key, else through the ledger outbox, drained by a process that holds it.
    const append: Append = signer
      ? (org, event, options) => services.events.create(org, event, options)
      : outboxAppend(database, config.AUDIT_ROLE, () => metrics.ledgerOutboxEnqueued.inc());
    metrics.observeLedgerOutbox(() => outboxStats(database.db));
    const { privacy, retention } = createPrivacyAndRetention(
      config,
      database,
      { append, originOf: (org) => ledger.originOf(org), cache, analytics, verifiers: trustedVerifiers },
      logger,
    );
    const reports = new ReportService(database.db, (org) => ledger.originOf(org), trustedVerifiers);
    const eventLimits = { maxBytes: config.EVENT_MAX_BYTES, maxDepth: config.EVENT_MAX_DEPTH, maxStringLength: config.EVENT_MAX_STRING_LENGTH, maxKeys: config.EVENT_MAX_KEYS };
    const fhir = new FhirService(database.db, events, eventLimits);
    // Delivery to SIEMs and webhooks through the job queue (docs/delivery.md).
    const deliveries = new DeliveryService(
      database,
      jobs,
      {
        origin: config.AUDIT_LOG_ORIGIN,
        secretKey: deliverySecretKey(config),
        batchEvents: config.DELIVERY_BATCH_EVENTS,
        attempts: config.DELIVERY_ATTEMPTS,
        backoffMs: config.DELIVERY_BACKOFF_MS,
        timeoutMs: config.DELIVERY_TIMEOUT_MS,
        rotationGraceMs: DAY_MS,
      },
      logger,
      metrics.deliveryObserver,
    );
    const services: Services = cacheServices(
      { events, ledger, exports: new ExportService(database, ledger), audit: new AuditService(database), apiKeys, identity, privacy, reports, fhir, deliveries, analytics, retention },
      cache,
      { apiKeyLookups: redis !== null },
    );

    // Security alerts: stored, deduplicated, and every change appended to the organization's log
    // (through the ledger outbox in a worker without the signing key).
    const alerts = new AlertService(database, {
      append,
      // The log's alert events carry the subject's pseudonym, never the identifier.
      pseudonymize: (org, value) => privacy.pseudonymFor(org, value),
      // Every raise and change goes to the live streams and to the organization's SIEM and webhook
      // destinations (docs/delivery.md).
      onChange: (org, alert, change) => {
        streams?.alertChanged(org, alert, change);
        void deliveries.enqueueAlert(org, { ...alert, change }).catch((err: unknown) => logger.warn({ org, alert: alert.id, err: (err as Error).message }, 'alert not queued for delivery'));
      },
    });
    services.alerts = alerts;
    services.streams = streams;
    if (config.ALERTS_DETECTORS_ENABLED) {
      const observer = alertMetrics(metrics.registry, (err) => logger.error({ err }, 'security detectors failed on a batch'));
      const windows = redis ? new RedisWindowStore(redis, config.CACHE_KEY_PREFIX, () => observer.windowStoreErrors.inc()) : new MemoryWindowStore();
      detectors = new DetectorEngine(windows, alerts, observer, { maxQueue: config.ALERTS_QUEUE_MAX });
    }
    const detectorsOf = () => detectors;

    // A process that holds the signing key drains the ledger outbox into the log (docs/jobs.md).
    const outbox = signer
      ? new OutboxDrainer(
          database,
          services.events,
          eventInputSchemaFor(eventLimits),
          { batchSize: config.LEDGER_OUTBOX_BATCH_SIZE, claimMs: config.LEDGER_OUTBOX_CLAIM_MS, intervalMs: config.LEDGER_OUTBOX_DRAIN_INTERVAL_MS },
          metrics.outboxObserver,
          logger.child({ component: 'ledger-outbox' }),
        )
      : null;
    outbox?.start();

    const oidc = serveApi && config.AUTH_OIDC_ISSUER && config.AUTH_OIDC_AUDIENCE ? await OidcVerifier.create(database, oidcOptions(config)) : null;
    const runWorker = config.AUDIT_ROLE === 'worker' || config.AUDIT_ROLE === 'all';
    const boot = serveApi
      ? await bootstrap(database, apiKeys, config.AUDIT_BOOTSTRAP_ORG_NAME, config.AUDIT_BOOTSTRAP_API_KEY)
      : null;

    let shuttingDown = false;
    const rateLimiter: RateLimiter | null =
      config.RATE_LIMIT_PER_MINUTE === 0
        ? null
        : redis
          ? new RedisRateLimiter(redis, config.RATE_LIMIT_PER_MINUTE)
          : new MemoryRateLimiter(config.RATE_LIMIT_PER_MINUTE);
    const app = createApp({
      streamHeartbeatMs: config.STREAM_HEARTBEAT_MS,
      services,
      logger,
      metrics,
      readiness: {
        database,
        expectedSchemaVersion: expectedSchemaVersion(),
        // Queues need noeviction: /ready fails on any other policy.
        redisPing: redis ? () => pingRedis(redis).then(() => checkNoEviction(redis)) : null,
        isShuttingDown: () => shuttingDown,
      },
      rateLimiter: serveApi ? rateLimiter : null,
      corsOrigins: config.CORS_ORIGINS,
      trustProxy: config.TRUST_PROXY,
      bodyLimitBytes: config.HTTP_BODY_LIMIT_BYTES,
      limits: {
        event: {
          maxBytes: config.EVENT_MAX_BYTES,
          maxDepth: config.EVENT_MAX_DEPTH,
          maxStringLength: config.EVENT_MAX_STRING_LENGTH,
          maxKeys: config.EVENT_MAX_KEYS,
        },
      },
      trpcMaxBatch: config.TRPC_MAX_BATCH,
      publicLog:
        serveApi && config.AUDIT_PUBLIC_LOG
          ? {
              limiter:
                config.AUDIT_PUBLIC_LOG_RATE_PER_MINUTE === 0
                  ? null
                  : redis
                    ? new RedisRateLimiter(redis, config.AUDIT_PUBLIC_LOG_RATE_PER_MINUTE)
                    : new MemoryRateLimiter(config.AUDIT_PUBLIC_LOG_RATE_PER_MINUTE),
            }
          : null,
      graphql: {
        limits: { maxDepth: config.GRAPHQL_MAX_DEPTH, maxComplexity: config.GRAPHQL_MAX_COMPLEXITY, maxAliases: config.GRAPHQL_MAX_ALIASES },
        introspection: config.GRAPHQL_INTROSPECTION ?? config.NODE_ENV !== 'production',
        explorer: config.NODE_ENV !== 'production',
      },
      oidc,
      loginLimiter: new LoginLimiter(redis, config.AUTH_LOGIN_MAX_ATTEMPTS, config.AUTH_LOGIN_WINDOW_SECONDS),
      // Loaded only when configured: nothing Inngest-specific runs otherwise.
      inngest: config.INNGEST_SIGNING_KEY ? () => loadInngest(jobs, config, logger) : null,
    });

    // The worker re-verifies recent leaves and checkpoints; only keys from configuration are
    // trusted (the signing_keys table is writable by whoever tampers with the database).
    const selfAudit = runWorker
      ? new SelfAuditor(
          database,
          {
            origin: config.AUDIT_LOG_ORIGIN,
            verifiers: [
              ...new Set([
                ...(signer ? [signer.verifierKey] : []),
                ...(config.AUDIT_VERIFIER_KEY !== undefined ? [config.AUDIT_VERIFIER_KEY.trim()] : []),
                ...config.AUDIT_TRUSTED_VERIFIER_KEYS,
              ]),
            ].map((k) => parseVerifierKey(k)),
            windowLeaves: config.AUDIT_SELF_AUDIT_WINDOW,
            witnessDir: config.AUDIT_WITNESS_DIR ?? null,
            onFinding: async (org, finding, findings) => {
              await alerts.raise(
                org,
                {
                  detector: 'ledger_integrity',
                  subject: 'ledger',
                  context: { kind: finding.kind, leafIndex: finding.leafIndex, treeSize: finding.treeSize, reason: finding.reason, findings },
                },
                { appendToLog: false },
              );
            },
          },
          metrics,
          logger,
        )
      : null;

    // Every periodic task is a repeatable job: one run per interval however many workers there
    // are (docs/jobs.md). Add a task here with one line; every process declares them (an API
    // replica can list and retry them), only a worker schedules and runs them.
    // Behaviour analytics: new events embedded and scored by the anomaly detector (docs/analytics.md); never on the ingest path.
    const analyticsWorker = createAnalyticsWorker(analytics, raiseAnomalies((org, input) => alerts.raise(org, input), logger), logger);
    const periodic: PeriodicTask[] = [
      // Monthly partitions ahead of time (docs/architecture.md §4.2).
      { name: 'partition-upkeep', everyMs: DAY_MS, run: async () => logCreated(await ensurePartitions(database, config.PARTITION_MONTHS_AHEAD)) },
      ...(selfAudit ? [{ name: 'self-audit', everyMs: config.AUDIT_SELF_AUDIT_INTERVAL_MS, run: () => selfAudit.runOnce() }] : []),
      ...(witness ? [{ name: 'witness-publication', everyMs: config.AUDIT_WITNESS_INTERVAL_MS, run: () => republishLatest(database, witness) }] : []),
      // Destinations with a backlog are started, and the delivery lag measured.
      { name: 'delivery-sweep', everyMs: config.DELIVERY_SWEEP_INTERVAL_MS, attempts: 1, run: () => deliveries.sweep() },
      // Erasures whose process died (or that a released legal hold paused) are finished.
      { name: 'erasure-resumption', everyMs: config.PRIVACY_RESUME_INTERVAL_MS, run: async () => logResumed(await privacy.erasures.resumePending()) },
      { name: 'analytics-catch-up', everyMs: config.ANALYTICS_INTERVAL_MS, run: () => analyticsWorker.runOnce() },
      // Retention: archive, erase, drop partitions (docs/privacy.md §6); an advisory lock keeps one run at a time.
      { name: 'retention', everyMs: config.RETENTION_INTERVAL_MS, run: async () => void (await retention.run()) },
    ];
    const logCreated = (n: number) => n > 0 && logger.info({ created: n }, 'event partitions created');
    const logResumed = (n: number) => n > 0 && logger.info({ resumed: n }, 'erasures resumed');
    registerPeriodicTasks(jobs, periodic);
    // Scheduling needs the queue's Redis: in the background, retried until it answers, so a worker
    // started while Redis is down still serves (and still gets its schedules once Redis is back).
    const scheduling = new AbortController();
    if (runWorker) {
      await jobs.start();
      void schedulePeriodicTasks(jobs, periodic, {
        signal: scheduling.signal,
        failed: (err, next) => logger.warn({ err: (err as Error).message, retryInMs: next }, 'periodic tasks not scheduled yet'),
      }).then(async (scheduled) => {
        // Pending erasures are resumed at start too (once however many workers start together).
        if (scheduled) await jobs.enqueue('erasure-resumption', null, { jobId: 'erasure-resumption:start' });
      }).catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'erasure resumption at start not enqueued; the periodic run will do it'));
    }

    const server = http.createServer(app);
    server.keepAliveTimeout = 65_000; // longer than typical proxy idle timeouts (nginx 60 s)
    server.headersTimeout = 66_000;
    server.requestTimeout = 60_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.PORT === 0 ? 0 : config.PORT, config.HOST, () => resolve());
    });
    const address = server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    const url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${address.port}`;
    // A refused `audit-admin` names the running server to act through instead.
    database.dataDirLock?.setUrl(url);

    let closing: Promise<void> | null = null;
    const close = () =>
      (closing ??= (async () => {
        shuttingDown = true;
        scheduling.abort();
        // Every step is bounded: a dependency that stopped answering (Redis, a witness endpoint)
        // must not keep the process from exiting; what a step leaves undone is named in the log.
        // Appends get the longest bound: each one waits for its COMMIT (nothing acknowledged is lost).
        const step = (name: string, ms: number, run: () => Promise<unknown> | undefined) => boundedStep(name, ms, run, logger);
        await step('live streams', 5_000, () => streams?.close());
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        await step('security detectors flush', 10_000, () => detectorsOf()?.flush());
        await step('erasures', 30_000, () => privacy.erasures.drain());
        await step('ledger outbox', 30_000, () => outbox?.stop());
        await step('appends', 60_000, () => ingest.drain());
        await step('job queue', 20_000, () => jobs.close());
        await step('self-audit', 10_000, () => selfAudit?.stop());
        await step('security detectors', 5_000, () => detectorsOf()?.close());
        await step('analytics', 10_000, () => analyticsWorker.stop());
        await step('witness publication', 10_000, () => witness?.close());
        // Keep-alive connections become idle as their last responses go out: close them as they do,
        // for up to 5 s, then cut whatever is left.
        const sweep = setInterval(() => server.closeIdleConnections(), 50);
        await Promise.race([closed, new Promise((r) => setTimeout(r, 5_000).unref())]);
        clearInterval(sweep);
        server.closeAllConnections();
        for (const c of cleanups) await boundedStep('connections', 10_000, () => c().catch(() => undefined), logger);
      })());

    return { database, services, ingest, metrics, signer, bootstrap: boot, selfAudit, witness, jobs, alerts, detectors, analyticsWorker, outbox, url, app, close };
  } catch (err) {
    for (const c of cleanups) await c().catch(() => undefined);
    throw err;
  }
}

/**
 * Runs one step of the shutdown for at most `ms`; a step still running then is left behind and
 * named in the log (the process is exiting: its work is resumed by the next start or another replica).
 */
async function boundedStep(name: string, ms: number, run: () => Promise<unknown> | undefined, logger: Logger): Promise<void> {
  const step = Promise.resolve()
    .then(run)
    .catch((err: unknown) => {
      // The name only: a database error's message can carry the values of the batch it failed.
      logger.warn({ step: name, err: (err as Error)?.name }, 'shutdown step failed');
    });
  if (!(await within(step, ms))) logger.warn({ step: name, waitedMs: ms }, 'shutdown step did not finish in time; going on');
}

/** How long start-up waits for Redis before serving without it. */
const REDIS_START_WAIT_MS = 3_000;

function redisReadyWithin(redis: Redis, ms: number): Promise<boolean> {
  if (redis.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      resolve(ok);
    };
    const onReady = () => done(true);
    const timer = setTimeout(() => done(false), ms);
    redis.once('ready', onReady);
  });
}
