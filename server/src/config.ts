/**
 * All configuration, validated once at start-up. This is the only module that reads
 * `process.env` (enforced by a lint rule); everything else receives a typed {@link Config}.
 */
import fs from 'node:fs';
import { z } from 'zod';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const csv = z
  .string()
  .transform((v) => v.split(',').map((s) => s.trim()).filter((s) => s.length > 0));

/**
 * Every environment variable the server reads, with its default and a one-line description.
 * The README's configuration table is checked against this object by a test.
 */
export const configSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development')
    .describe('`production` hides error details from clients and refuses to generate a signing key'),
  PORT: int(0, 65535).default(3000).describe('HTTP port (0 = any free port)'),
  HOST: z.string().min(1).default('0.0.0.0').describe('interface to listen on'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info')
    .describe('pino log level'),
  AUDIT_ROLE: z.enum(['all', 'api', 'worker', 'migrate']).default('all')
    .describe('`api` serves HTTP, `worker` runs upkeep and self-audit, `migrate` applies migrations and exits, `all` does api + worker'),
  AUDIT_DATA_DIR: z.string().min(1).default('./data')
    .describe('embedded default only: PGlite data and the generated signing key'),
  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).optional()
    .describe('PostgreSQL connection string; unset = embedded PGlite in AUDIT_DATA_DIR'),
  DATABASE_POOL_MAX: int(1, 200).default(10).describe('PostgreSQL pool size per process'),
  DATABASE_RETRY_MS: int(0, 60_000).default(3000)
    .describe('how long a request waits for PostgreSQL while it restarts or fails over (new connections, appends known not to have committed) before a 503 with Retry-After; 0 = never'),
  DATABASE_MIGRATE_ON_START: bool.default(true)
    .describe('apply migrations at start-up under an advisory lock (set false when a Job runs them)'),
  REDIS_URL: z.url({ protocol: /^rediss?$/ }).optional()
    .describe('Redis connection string; unset = in-process rate limits and cache'),
  REDIS_SENTINELS: csv.optional()
    .refine((list) => list === undefined || list.every((v) => /^(?:\[[0-9a-fA-F:.]+\]|[^:[\]\s]+)(?::\d{1,5})?$/.test(v)), 'comma-separated host:port')
    .describe('comma-separated `host:port` of Redis Sentinels: REDIS_URL then gives only credentials, database and TLS (`rediss:`), the sentinels name the primary and the server follows failovers'),
  REDIS_SENTINEL_MASTER: z.string().regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces').default('audit')
    .describe('the name the sentinels monitor the primary under (`sentinel monitor <name> …`)'),
  REDIS_SENTINEL_PASSWORD: z.string().min(1).optional()
    .describe("the sentinels' own `requirepass`, when they have one"),
  AUDIT_LOG_ORIGIN: z.string().regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces').default('smedrec.audit')
    .describe('checkpoint origin prefix; each organization logs as `<origin>/<organizationId>`'),
  AUDIT_SIGNING_KEY: z.string().min(1).optional()
    .describe('Ed25519 signing key (signed-note `PRIVATE+KEY+…` form); read by `api`/`all` only, required there in production, generated into AUDIT_DATA_DIR otherwise'),
  AUDIT_VERIFIER_KEY: z.string().min(1).optional()
    .describe('verifier key (`name+hexid+base64`, public) of the active signing key: what a `worker` trusts without the private key (required for a production `worker` unless AUDIT_TRUSTED_VERIFIER_KEYS is set); must match AUDIT_SIGNING_KEY where both are set'),
  AUDIT_BOOTSTRAP_API_KEY: z.string().min(32, 'at least 32 characters').max(256).optional()
    .describe('`api`/`all` only: registered (hashed) as the admin key of the first organization on first start'),
  AUDIT_BOOTSTRAP_ORG_NAME: z.string().min(1).max(200).default('default')
    .describe('name of the organization created on first start'),
  CORS_ORIGINS: csv.default([]).describe('comma-separated allowed browser origins (empty = no CORS)'),
  TRUST_PROXY: z.string().default('loopback, linklocal, uniquelocal')
    .describe('Express `trust proxy` setting, so client IPs are right behind nginx/ingress'),
  RATE_LIMIT_PER_MINUTE: int(0, 1_000_000).default(6000)
    .describe('requests per minute per API key (0 = off); shared through Redis when configured'),
  AUDIT_PUBLIC_LOG: bool.default(false)
    .describe('serve `GET /api/v1/ledger/checkpoint?organizationId=…` and `/api/v1/ledger/keys` without an API key (off: tree sizes reveal how many events an organization records)'),
  AUDIT_PUBLIC_LOG_RATE_PER_MINUTE: int(0, 1_000_000).default(60)
    .describe('requests per minute per client address to the public log routes (0 = off); shared through Redis when configured'),
  HTTP_BODY_LIMIT_BYTES: int(1024, 64 * 1024 * 1024).default(8 * 1024 * 1024)
    .describe('largest request body accepted; a larger declared Content-Length is refused (413) before the body is read'),
  TRPC_MAX_BATCH: int(1, 1000).default(20)
    .describe('most calls one tRPC batch request may hold (set `maxItems` of the client\'s batch link to at most this); each call counts against RATE_LIMIT_PER_MINUTE'),
  GRAPHQL_INTROSPECTION: bool.optional()
    .describe('answer GraphQL introspection (`__schema`, `__type`); unset = on outside production, off in production'),
  GRAPHQL_MAX_DEPTH: int(1, 64).default(10).describe('deepest selection nesting of a GraphQL document'),
  GRAPHQL_MAX_COMPLEXITY: int(10, 100_000).default(250)
    .describe('highest complexity of a GraphQL document: 1 per field selected, 10 per operation called'),
  GRAPHQL_MAX_ALIASES: int(0, 1000).default(20).describe('most aliases in one GraphQL document'),
  CACHE_TTL_SECONDS: int(0, 86_400).default(300)
    .describe('how long a cached read (stats, event reads, checkpoints, API-key and signing-key look-ups) may be served; writes invalidate at once (0 = no cache)'),
  CACHE_MAX_ENTRIES: int(1, 10_000_000).default(10_000)
    .describe('most values of the in-process LRU cache (embedded default, without REDIS_URL)'),
  CACHE_KEY_PREFIX: z.string().regex(/^[\x21-\x7e]{1,64}$/, 'printable ASCII without spaces, at most 64 characters').default('audit:cache:')
    .describe('prefix of every cache key in Redis: deployments sharing one Redis database need different prefixes'),
  EVENT_MAX_BYTES: int(256, 1024 * 1024).default(32 * 1024)
    .describe('largest single event (JSON bytes)'),
  EVENT_MAX_DEPTH: int(1, 64).default(8).describe('deepest nesting allowed in `details`'),
  EVENT_MAX_STRING_LENGTH: int(16, 1024 * 1024).default(4096)
    .describe('longest string value anywhere in an event'),
  EVENT_MAX_KEYS: int(1, 10_000).default(256).describe('most keys in any one object of `details`'),
  INGEST_MAX_BATCH: int(1, 1000).default(1000)
    .describe('most events one group commit appends in a transaction'),
  INGEST_MAX_WAIT_MS: int(0, 1000).default(2)
    .describe('how long a group commit waits to gather more events'),
  AUDIT_SELF_AUDIT_INTERVAL_MS: int(0, 7 * 24 * 3600 * 1000).default(5 * 60 * 1000)
    .describe('worker: how often every organization\'s recent leaves and checkpoints are re-verified (0 = never)'),
  AUDIT_SELF_AUDIT_WINDOW: int(0, 1_000_000_000).default(100_000)
    .describe('worker: most recent leaves re-verified per organization and run (0 = the whole log)'),
  AUDIT_TRUSTED_VERIFIER_KEYS: csv.default([])
    .describe('comma-separated verifier keys of retired signing keys whose checkpoints the self-audit still accepts'),
  AUDIT_WITNESS_DIR: z.string().min(1).optional()
    .describe('publish every new checkpoint as one never-overwritten file per checkpoint under this directory'),
  AUDIT_WITNESS_URL: z.url({ protocol: /^https?$/ }).optional()
    .describe('publish every new checkpoint by HTTP POST (text/plain note) to this URL'),
  AUDIT_WITNESS_TIMEOUT_MS: int(100, 120_000).default(5000).describe('timeout of one witness HTTP POST'),
  AUDIT_WITNESS_INTERVAL_MS: int(0, 7 * 24 * 3600 * 1000).default(10 * 60 * 1000)
    .describe('worker: how often the latest checkpoint of every log is published again to the witnesses, so one that missed publications catches up (0 = never)'),
  JOBS_KEY_PREFIX: z.string().regex(/^[\x21-\x7e]{1,64}$/, 'printable ASCII without spaces, at most 64 characters').default('audit:jobs')
    .describe('prefix of every job-queue key in Redis (BullMQ): deployments sharing one Redis database need different prefixes'),
  INNGEST_SIGNING_KEY: z.string().min(1).optional()
    .describe('serve the job functions to an Inngest server at `/api/inngest`, requests signed with this key (unset = no Inngest endpoint, nothing Inngest-specific runs)'),
  INNGEST_BASE_URL: z.url({ protocol: /^https?$/ }).optional()
    .describe('the Inngest server the endpoint registers with (self-hosted, e.g. `http://inngest:8288`); unset = Inngest Cloud'),
  DELIVERY_SECRET_KEY: z.string().regex(/^[A-Za-z0-9+/]{43}=$/, '32 bytes, standard base64 (openssl rand -base64 32)').optional()
    .describe('seals the webhook secrets and HEC tokens of delivery destinations (AES-256-GCM); unset = a fixed development key outside production, and no destination with a secret in production'),
  DELIVERY_BATCH_EVENTS: int(1, 10_000).default(500).describe('most events in one delivery batch (it ends at a signed checkpoint, so it may hold a few more)'),
  DELIVERY_ATTEMPTS: int(1, 100).default(8).describe('attempts of a delivery job before its failing batch becomes a dead letter'),
  DELIVERY_BACKOFF_MS: int(1, 3_600_000).default(2000).describe('delay before the first delivery retry; each later one waits twice as long'),
  DELIVERY_TIMEOUT_MS: int(100, 300_000).default(10_000).describe('timeout of one send to a destination'),
  DELIVERY_SWEEP_INTERVAL_MS: int(0, 3_600_000).default(2000)
    .describe('worker: how often destinations with a backlog are started and the delivery lag is measured (0 = never: deliveries start only on changes)'),
  ANALYTICS_INTERVAL_MS: int(0, 24 * 3600 * 1000).default(60_000)
    .describe('worker: how often new events are embedded for behaviour analytics and scored by the anomaly detector (0 = never; needs pgvector)'),
  ANALYTICS_BATCH_SIZE: int(1, 10_000).default(500).describe('worker: events embedded per transaction'),
  ANALYTICS_MAX_BATCHES_PER_RUN: int(1, 10_000).default(20).describe('worker: most batches one embedding run takes; the rest waits for the next run'),
  ANALYTICS_ANOMALY_THRESHOLD: z.coerce.number().positive().max(1000).default(4)
    .describe('anomaly score above which an event is an anomaly and the detector raises an alert, unless the organization set its own'),
  ANALYTICS_BASELINE_DAYS: int(1, 3650).default(90).describe('days of a principal\'s history that form its baseline'),
  ANALYTICS_MIN_BASELINE_EVENTS: int(1, 100_000).default(20).describe('fewest baseline events before a principal\'s events are scored'),
  PARTITION_MONTHS_AHEAD: int(1, 36).default(3).describe('monthly event partitions created ahead'),
  PRIVACY_ERASURE_BATCH_SIZE: int(1, 100_000).default(1000)
    .describe('events erased per transaction of a subject erasure (docs/privacy.md)'),
  PRIVACY_ERASURE_WAIT_MS: int(0, 60_000).default(5000)
    .describe('how long `POST /privacy/erasures` waits for the erasure to finish before answering 202 with its running state'),
  PRIVACY_ERASURE_LEASE_MS: int(1000, 3_600_000).default(60_000)
    .describe('how long a process owns an erasure it works on; after a crash another process resumes it once this has passed'),
  RETENTION_ARCHIVE_DIR: z.string().min(1).optional()
    .describe('directory (a PVC in Kubernetes) the worker writes retention archives to: gzip NDJSON bundles with a SHA-256 manifest; unset with RETENTION_ARCHIVE_S3_URL unset too = no archiving, hence no retention erasure'),
  RETENTION_ARCHIVE_S3_URL: z.string().regex(/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](?:\/[^\s]*)?$/, 's3://bucket or s3://bucket/prefix (a lowercase bucket name)').optional()
    .describe('S3-compatible bucket (and key prefix) the worker writes retention archives to, as `s3://bucket/prefix`, beside or instead of RETENTION_ARCHIVE_DIR (with both, an archive counts only once both hold it); credentials from RETENTION_ARCHIVE_S3_ACCESS_KEY_ID or the AWS SDK\'s default chain (AWS_* variables, web identity/IRSA, instance role)'),
  RETENTION_ARCHIVE_S3_REGION: z.string().regex(/^[a-z0-9-]{1,64}$/, 'a region name such as eu-central-1').optional()
    .describe('region of the archive bucket (required with RETENTION_ARCHIVE_S3_URL; `us-east-1` for most S3-compatible stores)'),
  RETENTION_ARCHIVE_S3_ENDPOINT: z.url({ protocol: /^https?$/ }).optional()
    .describe('endpoint of an S3-compatible store (MinIO, Ceph RGW), e.g. `https://minio.storage:9000`; unset = AWS S3'),
  RETENTION_ARCHIVE_S3_FORCE_PATH_STYLE: bool.default(false)
    .describe('path-style requests (`endpoint/bucket/key`) instead of virtual-hosted ones (`bucket.endpoint/key`), as most S3-compatible stores need'),
  RETENTION_ARCHIVE_S3_SSE: z.enum(['AES256', 'aws:kms', 'aws:kms:dsse']).optional()
    .describe('server-side encryption of archive objects; unset = the bucket\'s default encryption'),
  RETENTION_ARCHIVE_S3_KMS_KEY_ID: z.string().min(1).max(2048).optional()
    .describe('KMS key (id, alias or ARN) with RETENTION_ARCHIVE_S3_SSE=aws:kms or aws:kms:dsse; unset = the account\'s AWS managed key'),
  RETENTION_ARCHIVE_S3_OBJECT_LOCK_DAYS: int(1, 36_500).optional()
    .describe('S3 Object Lock: every archive object is locked in COMPLIANCE mode until its archive date plus this many days (the bucket must have Object Lock enabled); unset = no lock'),
  RETENTION_ARCHIVE_S3_ACCESS_KEY_ID: z.string().regex(/^[\x21-\x7e]{1,128}$/, 'printable ASCII without spaces').optional()
    .describe('static access key of the archive bucket (with RETENTION_ARCHIVE_S3_SECRET_ACCESS_KEY); unset = the AWS SDK\'s default chain'),
  RETENTION_ARCHIVE_S3_SECRET_ACCESS_KEY: z.string().regex(/^[\x21-\x7e]{1,256}$/, 'printable ASCII without spaces').optional()
    .describe('secret of RETENTION_ARCHIVE_S3_ACCESS_KEY_ID'),
  RETENTION_INTERVAL_MS: int(0, 7 * 24 * 3600 * 1000).default(3600 * 1000)
    .describe('worker: how often retention runs (archive, erase, drop partitions; docs/privacy.md §6); 0 = only `audit-admin retention run`'),
  RETENTION_DROP_PARTITIONS: bool.default(true)
    .describe('retention detaches and drops a monthly events partition once every row in it is archived and erased'),
  PRIVACY_RESUME_INTERVAL_MS: int(0, 24 * 3600 * 1000).default(60_000)
    .describe('worker: how often running erasures whose process died (or whose legal hold was released) are resumed (0 = only at start-up)'),
  LEDGER_OUTBOX_DRAIN_INTERVAL_MS: int(0, 3_600_000).default(1000)
    .describe('processes holding the signing key: how often the ledger outbox (events of workers without the key) is drained into the log; at once again after a full batch (0 = never: this process does not drain)'),
  LEDGER_OUTBOX_BATCH_SIZE: int(1, 10_000).default(500).describe('ledger outbox rows one drain round claims and appends'),
  LEDGER_OUTBOX_CLAIM_MS: int(1000, 3_600_000).default(60_000)
    .describe('how long a drainer holds the ledger outbox rows it claimed before another replica may take them over (a drainer that died)'),
  SHUTDOWN_TIMEOUT_MS: int(1000, 120_000).default(25_000)
    .describe('graceful shutdown deadline after SIGTERM'),
  AUTH_SECRET: z.string().min(32, 'at least 32 characters').max(512).optional()
    .describe('signs session cookies (the same on every replica); unset = sign-in at /auth is off in production, and uses a per-process secret otherwise'),
  AUTH_BASE_URL: z.url({ protocol: /^https?$/ }).optional()
    .describe('public URL of the server (`https://audit.example.org`), for sign-in cookies and origin checks; unset = taken from each request'),
  AUTH_SECURE_COOKIES: bool.default(true)
    .describe('mark session cookies `Secure` (`__Secure-` prefix); turn off only for plain-http development with curl'),
  AUTH_SIGN_UP_ENABLED: bool.default(false)
    .describe('allow self sign-up at /auth/sign-up/email (off: operators create users with `audit-admin users create`)'),
  AUTH_SESSION_TTL_SECONDS: int(300, 30 * 24 * 3600).default(12 * 3600)
    .describe('lifetime of a sign-in session (extended while in use)'),
  AUTH_LOGIN_MAX_ATTEMPTS: int(1, 1000).default(5)
    .describe('failed sign-ins allowed per client address and per account in AUTH_LOGIN_WINDOW_SECONDS (then 429 with Retry-After; shared through Redis)'),
  AUTH_LOGIN_WINDOW_SECONDS: int(1, 24 * 3600).default(15 * 60).describe('window of AUTH_LOGIN_MAX_ATTEMPTS'),
  AUTH_OIDC_ISSUER: z.url({ protocol: /^https?$/ }).optional()
    .describe('OpenID provider whose JWT access tokens are accepted as `Authorization: Bearer` (with AUTH_OIDC_AUDIENCE)'),
  AUTH_OIDC_AUDIENCE: z.string().min(1).optional().describe('the `aud` those tokens must carry'),
  AUTH_OIDC_ORGANIZATION_CLAIM: z.string().min(1).default('org_id').describe('claim holding the organization id'),
  AUTH_OIDC_ROLE_CLAIM: z.string().min(1).default('roles').describe('claim holding a role name or a list of them'),
  AUTH_OIDC_ROLE_MAP: csv.default([])
    .describe('comma-separated `claim-value=role` pairs mapping the provider\'s values to roles (a value that is a role name maps to itself)'),
  AUTH_OIDC_ALGORITHMS: csv.default(['RS256', 'ES256', 'PS256', 'EdDSA']).describe('accepted JWS algorithms (asymmetric only)'),
  AUTH_OIDC_JWKS_COOLDOWN_MS: int(0, 3_600_000).default(30_000)
    .describe('least time between two key-set fetches caused by tokens with an unknown `kid`'),
  ALERTS_DETECTORS_ENABLED: bool.default(true)
    .describe('evaluate the security detectors on every committed batch (docs/alerts.md); off = only alerts raised by other components'),
  ALERTS_QUEUE_MAX: int(100, 10_000_000).default(100_000)
    .describe('most committed events waiting for the detectors; beyond it batches are skipped and counted (audit_detector_events_dropped_total)'),
  STREAM_MAX_CLIENTS: int(0, 100_000).default(1000)
    .describe('most live-stream connections (SSE and tRPC subscriptions) per process (0 = streams off)'),
  STREAM_MAX_LAG_EVENTS: int(10, 10_000_000).default(10_000)
    .describe('a live-stream client this many events behind the log is disconnected (it can resume with Last-Event-ID)'),
  STREAM_HEARTBEAT_MS: int(1000, 300_000).default(15_000)
    .describe('comment line sent on idle live streams so proxies keep them open'),
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url().optional()
    .describe('OTLP/HTTP endpoint for traces; unset = no tracing'),
  OTEL_SERVICE_NAME: z.string().default('audit-server').describe('service.name resource attribute'),
});

/**
 * Variables that may carry a secret (or, for the keys, are usually mounted beside one): each can
 * instead be given as a file, `<NAME>_FILE=/run/secrets/…` (the Docker and Kubernetes secrets
 * convention), read once at start-up with the trailing newline trimmed. Setting both is an error.
 */
export const FILE_VARIABLES = [
  'DATABASE_URL',
  'REDIS_URL',
  'REDIS_SENTINEL_PASSWORD',
  'AUDIT_SIGNING_KEY',
  'AUDIT_VERIFIER_KEY',
  'AUDIT_BOOTSTRAP_API_KEY',
  'AUDIT_TRUSTED_VERIFIER_KEYS',
  'AUDIT_WITNESS_URL',
  'AUTH_SECRET',
  'INNGEST_SIGNING_KEY',
  'DELIVERY_SECRET_KEY',
  'RETENTION_ARCHIVE_S3_ACCESS_KEY_ID',
  'RETENTION_ARCHIVE_S3_SECRET_ACCESS_KEY',
] as const satisfies ReadonlyArray<keyof typeof configSchema.shape>;

/** A variable that may carry a secret ({@link FILE_VARIABLES}). */
export type SecretVariable = (typeof FILE_VARIABLES)[number];

/**
 * The secret-bearing variables each process role uses (docs/deploying.md "Secrets per role"): a
 * deployment gives a role these and no other. `migrate` connects to the database and nothing else;
 * `api` signs checkpoints, bootstraps the first organization and publishes to a witness; `worker`
 * verifies with public keys only (`all` is `api` plus `worker`). The Kubernetes manifests are
 * tested against this list.
 */
export const ROLE_SECRETS = {
  migrate: ['DATABASE_URL'],
  api: ['DATABASE_URL', 'REDIS_URL', 'REDIS_SENTINEL_PASSWORD', 'AUDIT_SIGNING_KEY', 'AUDIT_BOOTSTRAP_API_KEY', 'AUDIT_WITNESS_URL', 'AUTH_SECRET', 'INNGEST_SIGNING_KEY', 'DELIVERY_SECRET_KEY'],
  worker: ['DATABASE_URL', 'REDIS_URL', 'REDIS_SENTINEL_PASSWORD', 'AUDIT_VERIFIER_KEY', 'AUDIT_TRUSTED_VERIFIER_KEYS', 'DELIVERY_SECRET_KEY', 'RETENTION_ARCHIVE_S3_ACCESS_KEY_ID', 'RETENTION_ARCHIVE_S3_SECRET_ACCESS_KEY'],
} as const satisfies Record<'migrate' | 'api' | 'worker', readonly SecretVariable[]>;

/** The validated configuration. */
export type Config = z.infer<typeof configSchema>;

/** Thrown when the environment is invalid: one line per offending variable. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/**
 * Parses an environment (by default `process.env`) into a {@link Config}.
 * Empty strings count as unset so `FOO=` in an env file does not override a default.
 */
export function loadConfig(
  env: Record<string, string | undefined> | undefined = undefined,
  options: {
    /** Check the secrets AUDIT_ROLE needs (default); the admin CLI, which signs nothing, does not. */
    roleSecrets?: boolean;
  } = {},
): Config {
  env ??= process.env;
  const input: Record<string, string> = {};
  for (const key of Object.keys(configSchema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== '') input[key] = value;
  }
  for (const key of FILE_VARIABLES) {
    const file = env[`${key}_FILE`];
    if (file === undefined || file === '') continue;
    if (key in input) throw new ConfigError(`invalid configuration: ${key}_FILE: set either ${key} or ${key}_FILE, not both`);
    input[key] = readSecretFile(`${key}_FILE`, file);
  }
  const parsed = configSchema.safeParse(input);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `invalid configuration: ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(lines.join('\n'));
  }
  const config = parsed.data;
  const problem = (options.roleSecrets === false ? null : roleProblem(config)) ?? authProblem(config) ?? redisProblem(config) ?? archiveProblem(config);
  if (problem) throw new ConfigError(`invalid configuration: ${problem}`);
  return config;
}

/**
 * Each role needs only the secrets it uses (docs/deploying.md "Secrets per role"): `api` and
 * `all` sign checkpoints (AUDIT_SIGNING_KEY, required in production) and bootstrap the first
 * organization; a `worker` only verifies, so it needs a trusted verifier key, never the private
 * key; `migrate` needs nothing but the database.
 */
function roleProblem(c: Config): string | null {
  const production = c.NODE_ENV === 'production';
  const signs = c.AUDIT_ROLE === 'api' || c.AUDIT_ROLE === 'all';
  if (production && signs && !c.AUDIT_SIGNING_KEY) return `AUDIT_SIGNING_KEY: required when NODE_ENV=production and AUDIT_ROLE=${c.AUDIT_ROLE}`;
  if (production && c.AUDIT_ROLE === 'worker' && !c.AUDIT_VERIFIER_KEY && !c.AUDIT_SIGNING_KEY && c.AUDIT_TRUSTED_VERIFIER_KEYS.length === 0) {
    return 'AUDIT_VERIFIER_KEY: required when NODE_ENV=production and AUDIT_ROLE=worker (the verifier key of the active signing key; the worker never needs the private key)';
  }
  return null;
}

/** Sentinels say where the primary is; REDIS_URL still carries the credentials and turns Redis on. */
function redisProblem(c: Config): string | null {
  if (c.REDIS_SENTINELS && c.REDIS_SENTINELS.length > 0 && !c.REDIS_URL) return 'REDIS_SENTINELS: needs REDIS_URL (its credentials, database and TLS are used with the primary the sentinels name)';
  return null;
}

/** The archive bucket's settings that only make sense together (docs/privacy.md §6). */
function archiveProblem(c: Config): string | null {
  const url = c.RETENTION_ARCHIVE_S3_URL;
  if (url !== undefined) {
    const prefix = url.replace(/^s3:\/\/[^/]+\/?/, '').replace(/\/+$/, '');
    if (prefix.split('/').some((s) => s === '.' || s === '..' || (s === '' && prefix !== ''))) return 'RETENTION_ARCHIVE_S3_URL: the prefix has an empty, `.` or `..` segment';
    if (c.RETENTION_ARCHIVE_S3_REGION === undefined) return 'RETENTION_ARCHIVE_S3_REGION: required with RETENTION_ARCHIVE_S3_URL (`us-east-1` for most S3-compatible stores)';
  } else {
    for (const name of ['RETENTION_ARCHIVE_S3_REGION', 'RETENTION_ARCHIVE_S3_ENDPOINT', 'RETENTION_ARCHIVE_S3_SSE', 'RETENTION_ARCHIVE_S3_KMS_KEY_ID', 'RETENTION_ARCHIVE_S3_OBJECT_LOCK_DAYS'] as const) {
      if (c[name] !== undefined) return `${name}: set without RETENTION_ARCHIVE_S3_URL`;
    }
  }
  if ((c.RETENTION_ARCHIVE_S3_ACCESS_KEY_ID === undefined) !== (c.RETENTION_ARCHIVE_S3_SECRET_ACCESS_KEY === undefined)) return 'RETENTION_ARCHIVE_S3_ACCESS_KEY_ID and RETENTION_ARCHIVE_S3_SECRET_ACCESS_KEY: set both or neither';
  if (c.RETENTION_ARCHIVE_S3_KMS_KEY_ID !== undefined && !c.RETENTION_ARCHIVE_S3_SSE?.startsWith('aws:kms')) return 'RETENTION_ARCHIVE_S3_KMS_KEY_ID: needs RETENTION_ARCHIVE_S3_SSE=aws:kms or aws:kms:dsse';
  return null;
}

/** Sign-in settings that only make sense together. */
function authProblem(c: Config): string | null {
  if ((c.AUTH_OIDC_ISSUER === undefined) !== (c.AUTH_OIDC_AUDIENCE === undefined)) return 'AUTH_OIDC_ISSUER and AUTH_OIDC_AUDIENCE: set both or neither';
  for (const pair of c.AUTH_OIDC_ROLE_MAP) {
    if (!/^[^=]+=(owner|admin|auditor|compliance_officer|developer|member|producer)$/.test(pair)) return `AUTH_OIDC_ROLE_MAP: "${pair}" is not claim-value=role`;
  }
  return null;
}

/** Reads a `<NAME>_FILE` secret once: the content with one trailing newline (LF or CRLF) trimmed. */
function readSecretFile(variable: string, file: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError(`invalid configuration: ${variable}: cannot read ${file} (${code})`);
  }
  return text.replace(/\r?\n$/, '');
}
