import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import type { ContainerResources } from './container-resources';
import { DisruptionBudget } from './disruption-budget';
import { MigrationJob } from './migration-job';
import type { NetworkPeer } from './network-peer';
import { NginxIngress } from './nginx-ingress';
import { PodNetworkPolicy } from './pod-network-policy';
import { RestrictedNamespace } from './restricted-namespace';
import { ServerAutoscaler } from './server-autoscaler';
import { AUDIT_SERVER_PORT, ServerDeployment } from './server-deployment';
import type { ServerPodOptions } from './server-pod';
import { migrateContainer } from './server-pod';
import { AUDIT_SERVER_VERSION, PART_OF } from './version';
import {
  checkDnsLabel,
  checkImage,
  checkInteger,
  checkQuantity,
  dnsEgressRule,
  egressTo,
  ingressFrom,
  objectMeta,
  recommendedLabels,
  selectorLabels,
  setSyncWave,
  SyncWaves,
} from './workload-defaults';

/** pino log level of the server (`LOG_LEVEL`). */
export enum LogLevel {
  FATAL = 'fatal',
  ERROR = 'error',
  WARN = 'warn',
  INFO = 'info',
  DEBUG = 'debug',
  TRACE = 'trace',
  SILENT = 'silent',
}

/** How database migrations are applied before the new server version takes traffic. */
export enum MigrationMode {
  /**
   * A Job (`AUDIT_ROLE=migrate`) annotated as an Argo CD `PreSync` hook: Argo CD runs it before
   * anything else of the application is synced. Right when the database lives outside the
   * Argo CD application (managed PostgreSQL, an operator-run cluster).
   */
  JOB_PRE_SYNC = 'job-pre-sync',
  /**
   * A Job annotated as an Argo CD `Sync` hook in the wave between the data tier and the api:
   * right when `PgVectorDb` is synced by the same Argo CD application, because a `PreSync` hook
   * would run before the database exists on the first sync.
   */
  JOB_SYNC_WAVE = 'job-sync-wave',
  /** An init container in every api and worker pod; migrations serialize on an advisory lock. */
  INIT_CONTAINER = 'init-container',
}

/** Non-secret server configuration, written into the ConfigMap (names from `server/src/config.ts`). */
export interface AuditServerConfig {
  /**
   * `LOG_LEVEL`.
   * @default LogLevel.INFO
   */
  readonly logLevel?: LogLevel;
  /**
   * `AUDIT_LOG_ORIGIN`: checkpoint origin prefix (printable ASCII, no spaces).
   * @default 'smedrec.audit'
   */
  readonly auditLogOrigin?: string;
  /**
   * `CORS_ORIGINS`: browser origins allowed by the server and by the ingress CORS annotations.
   * @default - no CORS
   * @see https://kubernetes.github.io/ingress-nginx/user-guide/nginx-configuration/annotations/#enable-cors
   */
  readonly corsOrigins?: string[];
  /**
   * `OTEL_EXPORTER_OTLP_ENDPOINT` (OTLP/HTTP).
   * @default - no tracing
   */
  readonly otelExporterOtlpEndpoint?: string;
  /**
   * `INNGEST_BASE_URL`: the self-hosted Inngest server `/api/inngest` registers with, when the
   * Secret has `inngest-signing-key` (docs/jobs.md).
   * @default - Inngest Cloud
   */
  readonly inngestBaseUrl?: string;
  /**
   * `OTEL_SERVICE_NAME`.
   * @default 'audit-server'
   */
  readonly otelServiceName?: string;
  /**
   * `RATE_LIMIT_PER_MINUTE`: requests per minute per API key, enforced by the server.
   * @default 6000
   */
  readonly rateLimitPerMinute?: number;
  /**
   * `DATABASE_POOL_MAX`: PostgreSQL pool size per process.
   * @default 10
   */
  readonly databasePoolMax?: number;
  /**
   * `HTTP_BODY_LIMIT_BYTES`; the ingress body-size annotation is derived from it.
   * @default 8388608
   * @see https://kubernetes.github.io/ingress-nginx/user-guide/nginx-configuration/annotations/#custom-max-body-size
   */
  readonly httpBodyLimitBytes?: number;
  /**
   * `SHUTDOWN_TIMEOUT_MS`: graceful shutdown deadline after SIGTERM; the pod's
   * terminationGracePeriodSeconds is derived from it.
   * @default 25000
   * @see https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination
   */
  readonly shutdownTimeoutMs?: number;
}

/** Ingress settings (ingress-nginx with cert-manager). */
export interface AuditServerIngressOptions {
  /**
   * Public host name.
   * @default 'api.smedrec.com'
   * @see https://kubernetes.io/docs/concepts/services-networking/ingress/
   */
  readonly host?: string;
  /**
   * IngressClass name.
   * @default 'nginx'
   * @see https://kubernetes.io/docs/concepts/services-networking/ingress/#ingress-class
   */
  readonly className?: string;
  /**
   * cert-manager ClusterIssuer that issues the TLS certificate.
   * @default 'letsencrypt-prod'
   * @see https://cert-manager.io/docs/usage/ingress/
   */
  readonly clusterIssuer?: string;
  /**
   * Secret cert-manager writes the certificate into.
   * @default '<name>-tls'
   * @see https://kubernetes.io/docs/concepts/services-networking/ingress/#tls
   */
  readonly tlsSecretName?: string;
  /**
   * Requests per minute per client IP (`nginx.ingress.kubernetes.io/limit-rpm`).
   * @default 100
   * @see https://kubernetes.github.io/ingress-nginx/user-guide/nginx-configuration/annotations/#rate-limiting
   */
  readonly requestsPerMinutePerClient?: number;
  /**
   * Concurrent connections per client IP (`nginx.ingress.kubernetes.io/limit-connections`).
   * @default 20
   * @see https://kubernetes.github.io/ingress-nginx/user-guide/nginx-configuration/annotations/#rate-limiting
   */
  readonly connectionsPerClient?: number;
  /**
   * Upstream read/send timeout in seconds.
   * @default 60
   * @see https://kubernetes.github.io/ingress-nginx/user-guide/nginx-configuration/annotations/#custom-timeouts
   */
  readonly proxyTimeoutSeconds?: number;
  /**
   * Also emit the ingress-nginx controller settings that make clients over a rate limit see
   * `429 Too Many Requests` (RFC 6585 §4) instead of the controller's default `503`:
   * `limit-req-status-code` and `limit-conn-status-code`. Both are keys of the controller's
   * ConfigMap, not Ingress annotations, so they apply to every Ingress of that controller. The
   * emitted ConfigMap holds only these two keys; `kubectl apply` (and Argo CD) merge them into the
   * controller's existing ConfigMap.
   * @default - not emitted: set both keys in the controller's configuration (docs/deploying.md)
   * @see https://kubernetes.github.io/ingress-nginx/user-guide/nginx-configuration/configmap/#limit-req-status-code
   */
  readonly controllerConfigMap?: IngressControllerConfigMapOptions;
}

/** Where the ingress-nginx controller reads its configuration from (`--configmap`). */
export interface IngressControllerConfigMapOptions {
  /**
   * Name of the controller's ConfigMap.
   * @default 'ingress-nginx-controller'
   * @see https://kubernetes.io/docs/concepts/overview/working-with-objects/names/
   */
  readonly name?: string;
  /**
   * Namespace the controller runs in.
   * @default 'ingress-nginx'
   * @see https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/
   */
  readonly namespace?: string;
}

/** A Redis Sentinel group the server follows instead of one Redis (`RedisCache` in Sentinel mode). */
export interface AuditServerRedisSentinelOptions {
  /** `host:port` of every sentinel (`REDIS_SENTINELS`); `RedisCache.sentinels`. */
  readonly sentinels: string[];
  /**
   * Name the sentinels monitor the primary under (`REDIS_SENTINEL_MASTER`).
   * @default 'audit'
   */
  readonly masterName?: string;
  /**
   * The sentinels the api and worker may reach (egress NetworkPolicy); `RedisCache.sentinelPeer`.
   * @default - any address on TCP 26379
   * @see https://kubernetes.io/docs/concepts/services-networking/network-policies/
   */
  readonly peer?: NetworkPeer;
}

/** Horizontal Pod Autoscaler settings of the api Deployment. */
export interface AuditServerAutoscalingOptions {
  /**
   * Upper bound of replicas.
   * @default 10
   * @see https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/
   */
  readonly maxReplicas?: number;
  /**
   * Target average CPU utilization, percent of the request.
   * @default 70
   * @see https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/
   */
  readonly cpuUtilizationPercent?: number;
  /**
   * Target average memory utilization, percent of the request.
   * @default 80
   * @see https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/
   */
  readonly memoryUtilizationPercent?: number;
}

/** Server-side encryption of retention archive objects (`RETENTION_ARCHIVE_S3_SSE`). */
export enum ArchiveEncryption {
  /** SSE-S3: keys managed by S3. */
  AES256 = 'AES256',
  /** SSE-KMS, with `kmsKeyId` or the account's AWS managed key. */
  KMS = 'aws:kms',
  /** Dual-layer SSE-KMS. */
  KMS_DSSE = 'aws:kms:dsse',
}

/**
 * A web identity the worker exchanges with AWS STS for an IAM role (IRSA without the pod identity
 * webhook): the worker gets its own ServiceAccount, a projected token of it whose audience is STS
 * only, and `AWS_ROLE_ARN` / `AWS_WEB_IDENTITY_TOKEN_FILE`, which the AWS SDK's default chain reads.
 * The role's trust policy names `system:serviceaccount:<namespace>:<name>-worker`.
 */
export interface AuditServerWebIdentityOptions {
  /** ARN of the IAM role (`arn:aws:iam::<account>:role/<name>`). */
  readonly roleArn: string;
  /**
   * Audience of the projected token.
   * @default 'sts.amazonaws.com'
   */
  readonly audience?: string;
}

/** An S3-compatible bucket the worker archives retention bundles to (docs/privacy.md §6). */
export interface AuditServerArchiveBucketOptions {
  /** `RETENTION_ARCHIVE_S3_URL`: `s3://bucket` or `s3://bucket/prefix`. */
  readonly bucketUrl: string;
  /** `RETENTION_ARCHIVE_S3_REGION` (`us-east-1` for most S3-compatible stores). */
  readonly region: string;
  /**
   * `RETENTION_ARCHIVE_S3_ENDPOINT`: an S3-compatible store (MinIO, Ceph RGW).
   * @default - AWS S3
   */
  readonly endpoint?: string;
  /**
   * `RETENTION_ARCHIVE_S3_FORCE_PATH_STYLE`.
   * @default false
   */
  readonly forcePathStyle?: boolean;
  /**
   * `RETENTION_ARCHIVE_S3_SSE`.
   * @default - the bucket's default encryption
   */
  readonly encryption?: ArchiveEncryption;
  /**
   * `RETENTION_ARCHIVE_S3_KMS_KEY_ID`, with `ArchiveEncryption.KMS` or `KMS_DSSE`.
   * @default - the account's AWS managed key
   */
  readonly kmsKeyId?: string;
  /**
   * `RETENTION_ARCHIVE_S3_OBJECT_LOCK_DAYS`: lock every object in COMPLIANCE mode for this many
   * days after its archive date (the bucket must have Object Lock enabled).
   * @default - no lock
   */
  readonly objectLockDays?: number;
  /**
   * Read a static access key from the server Secret, keys `retention-s3-access-key-id` and
   * `retention-s3-secret-access-key`, as files in the worker alone.
   * @default false
   */
  readonly staticAccessKey?: boolean;
  /**
   * Obtain credentials as a web identity instead (AWS IRSA).
   * @default - none: a static access key, or whatever the node offers (instance role)
   */
  readonly webIdentity?: AuditServerWebIdentityOptions;
  /**
   * The bucket's endpoint (and STS with `webIdentity`) the worker may reach (egress NetworkPolicy);
   * only the worker gets it.
   * @default - any address on TCP 443
   * @see https://kubernetes.io/docs/concepts/services-networking/network-policies/
   */
  readonly peer?: NetworkPeer;
}

/** Retention settings of the worker. */
export interface AuditServerRetentionOptions {
  /**
   * Archive to an S3-compatible bucket.
   * @default - no bucket
   */
  readonly s3?: AuditServerArchiveBucketOptions;
}

/** Props of {@link AuditServer}. */
export interface AuditServerProps {
  /**
   * Base name of every object.
   * @default 'audit-server'
   * @see https://kubernetes.io/docs/concepts/overview/working-with-objects/names/
   */
  readonly name?: string;
  /**
   * Namespace of every object.
   * @default 'smedrec-audit'
   * @see https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/
   */
  readonly namespace?: string;
  /**
   * Create the Namespace (labelled for Pod Security Standards `restricted`) and its default-deny
   * NetworkPolicy. Turn off when the namespace is managed elsewhere.
   * @default true
   * @see https://kubernetes.io/docs/concepts/security/pod-security-admission/
   */
  readonly createNamespace?: boolean;
  /**
   * Image repository.
   * @default 'ghcr.io/smedrec/audit-server'
   * @see https://kubernetes.io/docs/concepts/containers/images/
   */
  readonly imageRepository?: string;
  /**
   * Image tag (never `latest`).
   * @default - the package version, {@link AUDIT_SERVER_VERSION}
   * @see https://kubernetes.io/docs/concepts/containers/images/
   */
  readonly imageTag?: string;
  /**
   * Secret with the keys `database-url`, `redis-url`, `signing-key`, `verifier-key`,
   * `auth-secret`, `delivery-secret-key`, `migration-database-url`, and the optional
   * `bootstrap-api-key`, `trusted-verifier-keys` and `inngest-signing-key` (docs/deploying.md
   * "Secrets per role"; `redis-sentinel-password` too with `redisSentinel`).
   * @default 'audit-server-secrets'
   * @see https://kubernetes.io/docs/concepts/configuration/secret/
   */
  readonly secretName?: string;
  /**
   * Key of the connection string of the migration role (owner of the schema). Only the Job / init
   * container uses it; the api and the worker use `database-url` (the runtime role
   * `audit_runtime`: SELECT/INSERT, UPDATE only where a trigger narrows it, and partition upkeep
   * through the one SECURITY DEFINER function the server's migration 0006 grants it).
   * @default 'migration-database-url'
   * @see https://kubernetes.io/docs/concepts/configuration/secret/
   */
  readonly migrationDatabaseUrlKey?: string;
  /**
   * Typed non-secret configuration.
   * @default - server defaults, NODE_ENV=production
   * @see https://kubernetes.io/docs/concepts/configuration/configmap/
   */
  readonly config?: AuditServerConfig;
  /**
   * Replicas of the api; also the HPA minimum when autoscaling is on.
   * @default 3
   * @see https://kubernetes.io/docs/concepts/workloads/controllers/deployment/
   */
  readonly replicas?: number;
  /**
   * Autoscale the api with an autoscaling/v2 HPA (the Deployment then has no `replicas`).
   * @default true
   * @see https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/
   */
  readonly autoscalingEnabled?: boolean;
  /**
   * HPA tuning.
   * @default - 3–10 replicas, CPU 70 %, memory 80 %
   * @see https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/
   */
  readonly autoscaling?: AuditServerAutoscalingOptions;
  /**
   * Replicas of the worker Deployment (`AUDIT_ROLE=worker`).
   * @default 2
   * @see https://kubernetes.io/docs/concepts/workloads/controllers/deployment/
   */
  readonly workerReplicas?: number;
  /**
   * How migrations run.
   * @default MigrationMode.JOB_PRE_SYNC
   * @see https://kubernetes.io/docs/concepts/workloads/controllers/job/
   */
  readonly migrations?: MigrationMode;
  /**
   * Create the Ingress.
   * @default true
   * @see https://kubernetes.io/docs/concepts/services-networking/ingress/
   */
  readonly ingressEnabled?: boolean;
  /**
   * Ingress settings.
   * @default - see {@link AuditServerIngressOptions}
   * @see https://kubernetes.io/docs/concepts/services-networking/ingress/
   */
  readonly ingress?: AuditServerIngressOptions;
  /**
   * Resources of the api container.
   * @default - requests 500m / 512Mi / 128Mi ephemeral, limits 1 / 1Gi / 512Mi
   * @see https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/
   */
  readonly apiResources?: ContainerResources;
  /**
   * Resources of the worker and migration containers.
   * @default - requests 250m / 256Mi / 128Mi ephemeral, limits 1 / 512Mi / 512Mi
   * @see https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/
   */
  readonly workerResources?: ContainerResources;
  /**
   * PostgreSQL the api, worker and migrations may reach (egress NetworkPolicy).
   * @default - any address on TCP 5432
   * @see https://kubernetes.io/docs/concepts/services-networking/network-policies/
   */
  readonly database?: NetworkPeer;
  /**
   * Redis the api and worker may reach.
   * @default - any address on TCP 6379
   * @see https://kubernetes.io/docs/concepts/services-networking/network-policies/
   */
  readonly redis?: NetworkPeer;
  /**
   * Follow a Redis Sentinel group: `REDIS_SENTINELS` and `REDIS_SENTINEL_MASTER` in the api and
   * worker containers (not the shared ConfigMap: the migration has no Redis), the sentinels' password from key `redis-sentinel-password` of the Secret (as a
   * file), egress to the sentinels. `redis-url` then carries only the data nodes' password,
   * database and TLS (`rediss:`); its host is not used.
   * @default - one Redis at `redis-url`
   * @see https://kubernetes.io/docs/concepts/configuration/configmap/
   */
  readonly redisSentinel?: AuditServerRedisSentinelOptions;
  /**
   * OTLP collector the api and worker may reach.
   * @default - no egress for telemetry
   * @see https://kubernetes.io/docs/concepts/services-networking/network-policies/
   */
  readonly otlpCollector?: NetworkPeer;
  /**
   * Endpoints outside the data tier the api and worker call, each allowed as an egress peer: SIEM
   * and webhook destinations (the worker delivers), the OIDC issuer's discovery and JWKS
   * (`AUTH_OIDC_ISSUER`, the api), `AUDIT_WITNESS_URL`, and an Inngest server. Nothing leaves the
   * pod network otherwise, so each such feature needs its endpoint listed here, e.g.
   * `{ cidr: '203.0.113.10/32', port: 443 }`, or `{ cidr: '0.0.0.0/0', port: 443 }` to allow any
   * HTTPS endpoint.
   * @default - none: deliveries, OIDC sign-in, witness publication and Inngest registration fail
   * @see https://kubernetes.io/docs/concepts/services-networking/network-policies/
   */
  readonly externalEgress?: NetworkPeer[];
  /**
   * Retention archives of the worker: an S3-compatible bucket, its credentials (a static key from
   * the Secret, or a web identity) and the egress to it.
   * @default - no archive bucket
   */
  readonly retention?: AuditServerRetentionOptions;
  /**
   * The ingress controller pods allowed to reach the api.
   * @default - pods labelled app.kubernetes.io/name=ingress-nginx in namespace ingress-nginx
   * @see https://kubernetes.io/docs/concepts/services-networking/network-policies/
   */
  readonly ingressController?: NetworkPeer;
  /**
   * Prometheus (or another scraper) allowed to read `/metrics` from api and worker pods.
   * @default - any pod in namespace `monitoring`
   * @see https://kubernetes.io/docs/concepts/services-networking/network-policies/
   */
  readonly metricsScraper?: NetworkPeer;
  /**
   * Seconds the preStop hook waits before SIGTERM, so endpoints controllers and ingress
   * controllers stop routing to the pod first.
   * @default 10
   * @see https://kubernetes.io/docs/concepts/containers/container-lifecycle-hooks/
   */
  readonly preStopDelaySeconds?: number;
}

const DEFAULT_API_RESOURCES: ContainerResources = {
  cpuRequest: '500m',
  cpuLimit: '1',
  memoryRequest: '512Mi',
  memoryLimit: '1Gi',
  ephemeralStorageRequest: '128Mi',
  ephemeralStorageLimit: '512Mi',
};

const DEFAULT_WORKER_RESOURCES: ContainerResources = {
  cpuRequest: '250m',
  cpuLimit: '1',
  memoryRequest: '256Mi',
  memoryLimit: '512Mi',
  ephemeralStorageRequest: '128Mi',
  ephemeralStorageLimit: '512Mi',
};

export { AUDIT_SERVER_PORT };

/**
 * ingress-nginx controller ConfigMap settings under which clients over a rate limit get `429`
 * (the controller answers `503` by default), as compose/nginx.conf does with `limit_req_status`
 * and `limit_conn_status`.
 * @see https://kubernetes.github.io/ingress-nginx/user-guide/nginx-configuration/configmap/#limit-conn-status-code
 */
export const INGRESS_NGINX_RATE_LIMIT_STATUS: { readonly [key: string]: string } = {
  'limit-req-status-code': '429',
  'limit-conn-status-code': '429',
};

/** Paths the ingress routes to the server (seed document, "NGINX Ingress Configuration"). */
export const AUDIT_SERVER_INGRESS_PATHS: readonly string[] = ['/api', '/trpc', '/graphql', '/auth', '/health', '/ready', '/'];

/**
 * The SMEDREC Audit server: api Deployment behind a Service and Ingress with an HPA, a worker
 * Deployment, migrations, and the namespace, service account, configuration, PDBs and
 * NetworkPolicies around them. Every pod satisfies Pod Security Standards `restricted`.
 */
export class AuditServer extends Construct {
  /** Port the server listens on (`PORT`). */
  public static readonly PORT = AUDIT_SERVER_PORT;
  /** Paths the Ingress routes to the server. */
  public static readonly INGRESS_PATHS: string[] = [...AUDIT_SERVER_INGRESS_PATHS];
  /** Image tag used when `imageTag` is not set: the package version. */
  public static readonly DEFAULT_IMAGE_TAG = AUDIT_SERVER_VERSION;
  /** ingress-nginx controller ConfigMap keys that make rate-limited clients see `429` (see `controllerConfigMap`). */
  public static readonly INGRESS_NGINX_RATE_LIMIT_STATUS: { readonly [key: string]: string } = { ...INGRESS_NGINX_RATE_LIMIT_STATUS };

  /** Base name of the objects. */
  public readonly name: string;
  /** Namespace of the objects. */
  public readonly namespace: string;
  /** Full image reference. */
  public readonly image: string;
  /** Name of the ClusterIP Service (port 80 → http). */
  public readonly serviceName: string;
  /** In-cluster host name of the Service. */
  public readonly host: string;
  /** Service port. */
  public readonly port = 80;
  /** Labels common to api and worker pods (use them to allow traffic from the server). */
  public readonly podLabels: { [key: string]: string };
  /** Selector labels of the api pods. */
  public readonly apiSelector: { [key: string]: string };
  /** Selector labels of the worker pods. */
  public readonly workerSelector: { [key: string]: string };
  /** Effective migration mode. */
  public readonly migrations: MigrationMode;
  /** The api Deployment. */
  public readonly apiDeployment: k8s.KubeDeployment;
  /** The worker Deployment. */
  public readonly workerDeployment: k8s.KubeDeployment;
  /** The ClusterIP Service. */
  public readonly service: k8s.KubeService;
  /** The migration Job, when migrations run as a Job. */
  public readonly migrationJob?: k8s.KubeJob;
  /** The Namespace, when created. */
  public readonly namespaceObject?: k8s.KubeNamespace;

  constructor(scope: Construct, id: string, props: AuditServerProps = {}) {
    super(scope, id);
    this.name = props.name ?? 'audit-server';
    this.namespace = props.namespace ?? 'smedrec-audit';
    checkDnsLabel('namespace', this.namespace);
    const tag = props.imageTag ?? AUDIT_SERVER_VERSION;
    this.image = `${props.imageRepository ?? 'ghcr.io/smedrec/audit-server'}:${tag}`;
    checkImage('imageTag', this.image);
    this.migrations = props.migrations ?? MigrationMode.JOB_PRE_SYNC;
    const s = resolveSettings(this.name, props);

    const ns = this.namespace;
    this.podLabels = { 'app.kubernetes.io/name': 'audit-server', 'app.kubernetes.io/instance': this.name };
    this.apiSelector = selectorLabels('audit-server', this.name, 'api');
    this.workerSelector = selectorLabels('audit-server', this.name, 'worker');
    const labels = (component: string) => recommendedLabels('audit-server', this.name, component, PART_OF, tag);
    const meta = (name: string, component: string) => objectMeta(name, ns, labels(component));

    if (props.createNamespace ?? true) {
      this.namespaceObject = new RestrictedNamespace(this, 'Namespace', { name: ns });
      // An empty podSelector selects every pod; with both policy types and no rules, all
      // traffic not allowed by another policy is dropped.
      new PodNetworkPolicy(this, 'DefaultDeny', { metadata: objectMeta('default-deny-all', ns, { 'app.kubernetes.io/part-of': PART_OF }) });
    }
    // The server never talks to the Kubernetes API, so its service account gets no token.
    const sa = new k8s.KubeServiceAccount(this, 'ServiceAccount', { metadata: meta(this.name, 'server'), automountServiceAccountToken: false });
    const configMap = new k8s.KubeConfigMap(this, 'Config', { metadata: meta(`${this.name}-config`, 'server'), data: serverConfigData(s) });
    for (const o of [sa, configMap]) setSyncWave(o, SyncWaves.config);
    const pod: ServerPodOptions = {
      image: this.image,
      serviceAccountName: sa.name,
      configMapName: configMap.name,
      secretName: props.secretName ?? 'audit-server-secrets',
      migrationDatabaseUrlKey: props.migrationDatabaseUrlKey ?? 'migration-database-url',
      redisSentinel: props.redisSentinel && { sentinels: props.redisSentinel.sentinels.join(','), masterName: props.redisSentinel.masterName ?? 'audit' },
      archiveBucket: s.archiveBucket,
    };

    [this.apiDeployment, this.workerDeployment] = this.addDeployments(pod, s, meta, this.addWorkerServiceAccount(s, meta));
    if (this.migrations !== MigrationMode.INIT_CONTAINER) this.migrationJob = this.addMigrationJob(pod, tag, s.workerResources, props.database);

    this.serviceName = this.name;
    this.host = `${this.serviceName}.${ns}.svc.cluster.local`;
    this.service = this.addServices(meta(this.name, 'api'));
    if (s.autoscalingEnabled) {
      new ServerAutoscaler(this, 'Autoscaler', {
        metadata: meta(this.name, 'api'),
        deploymentName: this.apiDeployment.name,
        minReplicas: s.replicas,
        maxReplicas: s.maxReplicas,
        cpuUtilizationPercent: props.autoscaling?.cpuUtilizationPercent ?? 70,
        memoryUtilizationPercent: props.autoscaling?.memoryUtilizationPercent ?? 80,
      });
    }
    // One voluntary eviction at a time: node drains proceed, capacity never drops by more.
    new DisruptionBudget(this, 'ApiDisruptionBudget', { metadata: meta(this.name, 'api'), selector: this.apiSelector, syncWave: SyncWaves.edge });
    new DisruptionBudget(this, 'WorkerDisruptionBudget', { metadata: meta(`${this.name}-worker`, 'worker'), selector: this.workerSelector, syncWave: SyncWaves.edge });
    this.addNetworkPolicies(props, meta);
    if (props.ingressEnabled ?? true) this.addIngress(props.ingress ?? {}, s, labels('api'));
  }

  /**
   * With a web identity, the worker's own ServiceAccount: the IAM role trusts it alone, so no api
   * pod can assume the role. Still without an API token (the STS token is projected explicitly).
   */
  private addWorkerServiceAccount(s: AuditServerSettings, meta: ObjectMetaFactory): string | undefined {
    if (!s.archiveBucket?.webIdentity) return undefined;
    const sa = new k8s.KubeServiceAccount(this, 'WorkerServiceAccount', { metadata: meta(`${this.name}-worker`, 'worker'), automountServiceAccountToken: false });
    setSyncWave(sa, SyncWaves.config);
    return sa.name;
  }

  private addDeployments(pod: ServerPodOptions, s: AuditServerSettings, meta: ObjectMetaFactory, workerServiceAccount: string | undefined): [k8s.KubeDeployment, k8s.KubeDeployment] {
    const common = {
      pod,
      preStopDelaySeconds: s.preStopDelaySeconds,
      // preStop delay + the server's own shutdown deadline + 10 s margin before SIGKILL.
      terminationGracePeriodSeconds: s.preStopDelaySeconds + Math.ceil(s.shutdownTimeoutMs / 1000) + 10,
      initContainers: this.migrations === MigrationMode.INIT_CONTAINER ? [migrateContainer(pod, s.workerResources)] : undefined,
    };
    const api = new ServerDeployment(this, 'Resource', {
      ...common,
      metadata: meta(this.name, 'api'),
      selector: this.apiSelector,
      role: 'api',
      resources: s.apiResources,
      // With an HPA the Deployment must not set replicas, or every apply resets the scale.
      replicas: s.autoscalingEnabled ? undefined : s.replicas,
    });
    const worker = new ServerDeployment(this, 'Worker', {
      ...common,
      pod: workerServiceAccount ? { ...pod, serviceAccountName: workerServiceAccount } : pod,
      metadata: meta(`${this.name}-worker`, 'worker'),
      selector: this.workerSelector,
      role: 'worker',
      resources: s.workerResources,
      replicas: s.workerReplicas,
    });
    return [api, worker];
  }

  private addMigrationJob(pod: ServerPodOptions, tag: string, resources: ContainerResources, database: NetworkPeer | undefined): k8s.KubeJob {
    const labels = recommendedLabels('audit-server', this.name, 'migrate', PART_OF, tag);
    const job = new MigrationJob(this, 'Migrate', {
      baseName: this.name,
      version: tag,
      namespace: this.namespace,
      labels,
      pod,
      resources,
      hook: this.migrations === MigrationMode.JOB_PRE_SYNC ? 'PreSync' : 'Sync',
      syncWave: this.migrations === MigrationMode.JOB_SYNC_WAVE ? SyncWaves.migrations : undefined,
    });
    new PodNetworkPolicy(this, 'MigrateNetworkPolicy', {
      metadata: objectMeta(`${this.name}-migrate`, this.namespace, labels),
      podSelector: selectorLabels('audit-server', this.name, 'migrate'),
      ingress: [],
      egress: [dnsEgressRule(), egressTo(database ?? { cidr: '0.0.0.0/0', port: 5432 })],
    });
    return job;
  }

  private addServices(metadata: k8s.ObjectMeta): k8s.KubeService {
    const service = new k8s.KubeService(this, 'Service', {
      metadata,
      spec: {
        type: 'ClusterIP',
        selector: this.apiSelector,
        ports: [{ name: 'http', port: this.port, targetPort: k8s.IntOrString.fromString('http'), protocol: 'TCP' }],
      },
    });
    const headless = new k8s.KubeService(this, 'HeadlessService', {
      metadata: { ...metadata, name: `${this.name}-headless` },
      spec: {
        clusterIp: 'None',
        // Pods are listed while still starting, for debugging and direct scraping.
        publishNotReadyAddresses: true,
        selector: this.apiSelector,
        ports: [{ name: 'http', port: AUDIT_SERVER_PORT, targetPort: k8s.IntOrString.fromString('http'), protocol: 'TCP' }],
      },
    });
    for (const o of [service, headless]) setSyncWave(o, SyncWaves.app);
    return service;
  }

  private addNetworkPolicies(props: AuditServerProps, meta: ObjectMetaFactory): void {
    const ingressController: NetworkPeer = props.ingressController ?? {
      namespace: 'ingress-nginx',
      podLabels: { 'app.kubernetes.io/name': 'ingress-nginx' },
      port: AUDIT_SERVER_PORT,
    };
    const scraper: NetworkPeer = props.metricsScraper ?? { namespace: 'monitoring', port: AUDIT_SERVER_PORT };
    const egress: k8s.NetworkPolicyEgressRule[] = [
      dnsEgressRule(),
      egressTo(props.database ?? { cidr: '0.0.0.0/0', port: 5432 }),
      egressTo(props.redis ?? { cidr: '0.0.0.0/0', port: 6379 }),
      ...(props.redisSentinel ? [egressTo(props.redisSentinel.peer ?? { cidr: '0.0.0.0/0', port: 26379 })] : []),
      ...(props.otlpCollector ? [egressTo(props.otlpCollector)] : []),
      ...(props.externalEgress ?? []).map((peer) => egressTo(peer)),
    ];
    new PodNetworkPolicy(this, 'ApiNetworkPolicy', {
      metadata: meta(this.name, 'api'),
      podSelector: this.apiSelector,
      ingress: ingressFrom([ingressController, scraper], AUDIT_SERVER_PORT),
      egress,
    });
    const bucket = props.retention?.s3;
    new PodNetworkPolicy(this, 'WorkerNetworkPolicy', {
      metadata: meta(`${this.name}-worker`, 'worker'),
      podSelector: this.workerSelector,
      ingress: ingressFrom([scraper], AUDIT_SERVER_PORT),
      // The archive bucket (and STS), for the worker alone.
      egress: bucket ? [...egress, egressTo(bucket.peer ?? { cidr: '0.0.0.0/0', port: 443 })] : egress,
    });
  }

  private addIngress(opts: AuditServerIngressOptions, settings: AuditServerSettings, labels: Record<string, string>): void {
    const host = opts.host ?? 'api.smedrec.com';
    const common = {
      className: opts.className ?? 'nginx',
      host,
      tlsSecretName: opts.tlsSecretName ?? `${this.name}-tls`,
      backend: { service: { name: this.serviceName, port: { name: 'http' } } },
    };
    new NginxIngress(this, 'Ingress', {
      ...common,
      metadata: { name: this.name, namespace: this.namespace, labels, annotations: ingressAnnotations(opts, settings.corsOrigins, settings.httpBodyLimitBytes) },
      paths: AUDIT_SERVER_INGRESS_PATHS.map((path) => ({ path, pathType: 'Prefix' as const })),
    });
    // `/` would also publish `/metrics`. A second Ingress for exactly that path denies every
    // source address (ingress-nginx applies annotations per location), so metrics stay
    // reachable only inside the cluster.
    new NginxIngress(this, 'MetricsDenyIngress', {
      ...common,
      metadata: {
        name: `${this.name}-metrics-deny`,
        namespace: this.namespace,
        labels,
        annotations: { 'nginx.ingress.kubernetes.io/denylist-source-range': '0.0.0.0/0,::/0' },
      },
      paths: [{ path: '/metrics', pathType: 'Exact' }],
    });
    // The status code of a rejected request is controller-wide. A `configuration-snippet`
    // annotation could set it per Ingress, but ingress-nginx rejects snippet annotations unless
    // the administrator allowed them (`allow-snippet-annotations`, off by default), so the
    // documented ConfigMap keys are the only portable way.
    if (opts.controllerConfigMap) {
      const cm = new k8s.KubeConfigMap(this, 'IngressControllerConfig', {
        metadata: {
          name: opts.controllerConfigMap.name ?? 'ingress-nginx-controller',
          namespace: opts.controllerConfigMap.namespace ?? 'ingress-nginx',
          labels: { 'app.kubernetes.io/part-of': PART_OF },
        },
        data: { ...INGRESS_NGINX_RATE_LIMIT_STATUS },
      });
      setSyncWave(cm, SyncWaves.config);
    }
  }
}

/** Metadata of an object of the server: its name and the component label. */
type ObjectMetaFactory = (name: string, component: string) => k8s.ObjectMeta;

/** Props of {@link AuditServerProps} that shape the configuration, defaulted and checked. */
interface AuditServerSettings {
  readonly replicas: number;
  readonly autoscalingEnabled: boolean;
  readonly maxReplicas: number;
  readonly workerReplicas: number;
  readonly preStopDelaySeconds: number;
  readonly shutdownTimeoutMs: number;
  readonly httpBodyLimitBytes: number;
  readonly auditLogOrigin: string;
  readonly corsOrigins: readonly string[];
  readonly config: AuditServerConfig;
  readonly apiResources: ContainerResources;
  readonly workerResources: ContainerResources;
  readonly archiveBucket?: ServerPodOptions['archiveBucket'];
}

/** Defaults the props and throws a message naming the prop when one is out of range. */
function resolveSettings(name: string, props: AuditServerProps): AuditServerSettings {
  const config = props.config ?? {};
  const s: AuditServerSettings = {
    replicas: props.replicas ?? 3,
    autoscalingEnabled: props.autoscalingEnabled ?? true,
    maxReplicas: props.autoscaling?.maxReplicas ?? 10,
    workerReplicas: props.workerReplicas ?? 2,
    preStopDelaySeconds: props.preStopDelaySeconds ?? 10,
    shutdownTimeoutMs: config.shutdownTimeoutMs ?? 25_000,
    httpBodyLimitBytes: config.httpBodyLimitBytes ?? 8 * 1024 * 1024,
    auditLogOrigin: config.auditLogOrigin ?? 'smedrec.audit',
    corsOrigins: config.corsOrigins ?? [],
    config,
    apiResources: props.apiResources ?? DEFAULT_API_RESOURCES,
    workerResources: props.workerResources ?? DEFAULT_WORKER_RESOURCES,
    archiveBucket: props.retention?.s3 && archiveBucketSettings(props.retention.s3),
  };
  if (!/^[a-z]([-a-z0-9]{0,40}[a-z0-9])?$/.test(name)) {
    throw new Error(`invalid name: '${name}' (expected a DNS label of at most 42 characters)`);
  }
  checkInteger('replicas', s.replicas, 1);
  if (s.autoscalingEnabled && s.replicas < 2) {
    throw new Error(`invalid replicas: ${s.replicas} (the HPA minimum must be >= 2 for availability)`);
  }
  if (s.autoscalingEnabled && s.maxReplicas < s.replicas) {
    throw new Error(`invalid autoscaling.maxReplicas: ${s.maxReplicas} (expected >= replicas ${s.replicas})`);
  }
  checkInteger('workerReplicas', s.workerReplicas, 1);
  if (!/^[\x21-\x7e]+$/.test(s.auditLogOrigin)) {
    throw new Error(`invalid config.auditLogOrigin: '${s.auditLogOrigin}' (expected printable ascii without spaces)`);
  }
  if (s.config.inngestBaseUrl !== undefined && !/^https?:\/\/[^\s/]+(\/\S*)?$/.test(s.config.inngestBaseUrl)) {
    throw new Error(`invalid config.inngestBaseUrl: '${s.config.inngestBaseUrl}' (expected an http(s) URL)`);
  }
  for (const o of s.corsOrigins) {
    if (!/^https?:\/\/[^/,\s]+$/.test(o)) {
      throw new Error(`invalid config.corsOrigins: '${o}' (expected scheme://host[:port] without a path)`);
    }
  }
  for (const [prop, r] of [
    ['apiResources', s.apiResources],
    ['workerResources', s.workerResources],
  ] as const) {
    for (const [k, v] of Object.entries(r)) checkQuantity(`${prop}.${k}`, v as string);
  }
  return s;
}

/**
 * The worker's archive bucket settings (`RETENTION_ARCHIVE_S3_*`, server/src/config.ts), checked
 * with messages naming the prop.
 */
function archiveBucketSettings(b: AuditServerArchiveBucketOptions): NonNullable<ServerPodOptions['archiveBucket']> {
  if (!/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/[^\s/]+)*\/?$/.test(b.bucketUrl)) {
    throw new Error(`invalid retention.s3.bucketUrl: '${b.bucketUrl}' (expected s3://bucket or s3://bucket/prefix)`);
  }
  if (!/^[a-z0-9-]{1,64}$/.test(b.region)) throw new Error(`invalid retention.s3.region: '${b.region}' (expected a region name such as eu-central-1)`);
  if (b.endpoint !== undefined && !/^https?:\/\/[^\s/]+(\/\S*)?$/.test(b.endpoint)) {
    throw new Error(`invalid retention.s3.endpoint: '${b.endpoint}' (expected an http(s) URL)`);
  }
  if (b.kmsKeyId !== undefined && b.encryption !== ArchiveEncryption.KMS && b.encryption !== ArchiveEncryption.KMS_DSSE) {
    throw new Error('invalid retention.s3.kmsKeyId: needs encryption ArchiveEncryption.KMS or KMS_DSSE');
  }
  if (b.objectLockDays !== undefined) checkInteger('retention.s3.objectLockDays', b.objectLockDays, 1);
  if (b.staticAccessKey && b.webIdentity) throw new Error('invalid retention.s3: staticAccessKey and webIdentity are exclusive');
  if (b.webIdentity && !/^arn:aws[a-z-]*:iam::\d{12}:role\/\S+$/.test(b.webIdentity.roleArn)) {
    throw new Error(`invalid retention.s3.webIdentity.roleArn: '${b.webIdentity.roleArn}' (expected arn:aws:iam::<account>:role/<name>)`);
  }
  const env: k8s.EnvVar[] = [
    { name: 'RETENTION_ARCHIVE_S3_URL', value: b.bucketUrl },
    { name: 'RETENTION_ARCHIVE_S3_REGION', value: b.region },
    ...(b.endpoint !== undefined ? [{ name: 'RETENTION_ARCHIVE_S3_ENDPOINT', value: b.endpoint }] : []),
    ...(b.forcePathStyle ? [{ name: 'RETENTION_ARCHIVE_S3_FORCE_PATH_STYLE', value: 'true' }] : []),
    ...(b.encryption !== undefined ? [{ name: 'RETENTION_ARCHIVE_S3_SSE', value: b.encryption }] : []),
    ...(b.kmsKeyId !== undefined ? [{ name: 'RETENTION_ARCHIVE_S3_KMS_KEY_ID', value: b.kmsKeyId }] : []),
    ...(b.objectLockDays !== undefined ? [{ name: 'RETENTION_ARCHIVE_S3_OBJECT_LOCK_DAYS', value: String(b.objectLockDays) }] : []),
  ];
  return {
    env,
    staticAccessKey: b.staticAccessKey ?? false,
    ...(b.webIdentity ? { webIdentity: { roleArn: b.webIdentity.roleArn, audience: b.webIdentity.audience ?? 'sts.amazonaws.com' } } : {}),
  };
}

/** The ConfigMap of the server: non-secret settings under the names server/src/config.ts reads. */
function serverConfigData(s: AuditServerSettings): Record<string, string> {
  const data: Record<string, string> = {
    NODE_ENV: 'production',
    PORT: String(AUDIT_SERVER_PORT),
    HOST: '0.0.0.0',
    LOG_LEVEL: s.config.logLevel ?? LogLevel.INFO,
    AUDIT_LOG_ORIGIN: s.auditLogOrigin,
    CORS_ORIGINS: s.corsOrigins.join(','),
    OTEL_SERVICE_NAME: s.config.otelServiceName ?? 'audit-server',
    RATE_LIMIT_PER_MINUTE: String(s.config.rateLimitPerMinute ?? 6000),
    DATABASE_POOL_MAX: String(s.config.databasePoolMax ?? 10),
    HTTP_BODY_LIMIT_BYTES: String(s.httpBodyLimitBytes),
    SHUTDOWN_TIMEOUT_MS: String(s.shutdownTimeoutMs),
    // Client IPs arrive through the ingress controller inside the cluster network.
    TRUST_PROXY: 'loopback, linklocal, uniquelocal',
    // The Job / init container applies migrations; the long-running roles only check them.
    DATABASE_MIGRATE_ON_START: 'false',
  };
  if (s.config.otelExporterOtlpEndpoint !== undefined) data.OTEL_EXPORTER_OTLP_ENDPOINT = s.config.otelExporterOtlpEndpoint;
  if (s.config.inngestBaseUrl !== undefined) data.INNGEST_BASE_URL = s.config.inngestBaseUrl;
  return data;
}

/**
 * Annotations of the public Ingress. Names and value formats from
 * https://kubernetes.github.io/ingress-nginx/user-guide/nginx-configuration/annotations/
 */
function ingressAnnotations(opts: AuditServerIngressOptions, corsOrigins: readonly string[], bodyLimitBytes: number): Record<string, string> {
  const rpm = opts.requestsPerMinutePerClient ?? 100;
  const timeout = opts.proxyTimeoutSeconds ?? 60;
  checkInteger('ingress.requestsPerMinutePerClient', rpm, 1);
  const prefix = 'nginx.ingress.kubernetes.io';
  const annotations: Record<string, string> = {
    'cert-manager.io/cluster-issuer': opts.clusterIssuer ?? 'letsencrypt-prod',
    [`${prefix}/ssl-redirect`]: 'true',
    [`${prefix}/force-ssl-redirect`]: 'true',
    // Rate limits are per client IP: 100 requests a minute and a bounded number of concurrent
    // connections. Excess requests get the controller's limit-req-status-code (503 unless the
    // controller is configured for 429, see controllerConfigMap).
    [`${prefix}/limit-rpm`]: String(rpm),
    [`${prefix}/limit-connections`]: String(opts.connectionsPerClient ?? 20),
    // Consistent hashing on the client address keeps a client on one replica (session affinity
    // for live tails and the in-process group commit).
    [`${prefix}/upstream-hash-by`]: '$binary_remote_addr',
    // Body size in MiB rounded up, so the controller never rejects what the server accepts.
    [`${prefix}/proxy-body-size`]: `${Math.ceil(bodyLimitBytes / (1024 * 1024))}m`,
    [`${prefix}/proxy-connect-timeout`]: '5',
    [`${prefix}/proxy-read-timeout`]: String(timeout),
    [`${prefix}/proxy-send-timeout`]: String(timeout),
  };
  if (corsOrigins.length > 0) {
    Object.assign(annotations, {
      [`${prefix}/enable-cors`]: 'true',
      [`${prefix}/cors-allow-origin`]: corsOrigins.join(', '),
      [`${prefix}/cors-allow-methods`]: 'GET, POST, PUT, PATCH, DELETE, OPTIONS',
      [`${prefix}/cors-allow-headers`]: 'Authorization, Content-Type, Accept, X-Api-Key, X-Request-Id, Idempotency-Key, trpc-accept',
      [`${prefix}/cors-expose-headers`]: 'X-Request-Id, Retry-After',
      [`${prefix}/cors-allow-credentials`]: 'true',
      [`${prefix}/cors-max-age`]: '600',
    });
  }
  return annotations;
}
