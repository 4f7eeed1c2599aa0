import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import type { ContainerResources } from './container-resources';
import type { NetworkPeer } from './network-peer';
import type { SecretKeyReference } from './secret-reference';
import { AUDIT_SERVER_VERSION, PART_OF } from './version';
import {
  checkDnsLabel,
  checkImage,
  checkQuantity,
  disruptionBudgetSpec,
  dnsEgressRule,
  egressTo,
  emptyDirVolume,
  ingressFrom,
  recommendedLabels,
  restrictedContainerSecurityContext,
  restrictedPodSecurityContext,
  secretEnv,
  selectorLabels,
  setSyncWave,
  SyncWaves,
  toResourceRequirements,
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
   */
  readonly corsOrigins?: string[];
  /**
   * `OTEL_EXPORTER_OTLP_ENDPOINT` (OTLP/HTTP).
   * @default - no tracing
   */
  readonly otelExporterOtlpEndpoint?: string;
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
   */
  readonly httpBodyLimitBytes?: number;
  /**
   * `SHUTDOWN_TIMEOUT_MS`: graceful shutdown deadline after SIGTERM; the pod's
   * terminationGracePeriodSeconds is derived from it.
   * @default 25000
   */
  readonly shutdownTimeoutMs?: number;
}

/** Ingress settings (ingress-nginx with cert-manager). */
export interface AuditServerIngressOptions {
  /**
   * Public host name.
   * @default 'api.smedrec.com'
   */
  readonly host?: string;
  /**
   * IngressClass name.
   * @default 'nginx'
   */
  readonly className?: string;
  /**
   * cert-manager ClusterIssuer that issues the TLS certificate.
   * @default 'letsencrypt-prod'
   */
  readonly clusterIssuer?: string;
  /**
   * Secret cert-manager writes the certificate into.
   * @default '<name>-tls'
   */
  readonly tlsSecretName?: string;
  /**
   * Requests per minute per client IP (`nginx.ingress.kubernetes.io/limit-rpm`).
   * @default 100
   */
  readonly requestsPerMinutePerClient?: number;
  /**
   * Concurrent connections per client IP (`nginx.ingress.kubernetes.io/limit-connections`).
   * @default 20
   */
  readonly connectionsPerClient?: number;
  /**
   * Upstream read/send timeout in seconds.
   * @default 60
   */
  readonly proxyTimeoutSeconds?: number;
}

/** Horizontal Pod Autoscaler settings of the api Deployment. */
export interface AuditServerAutoscalingOptions {
  /**
   * Upper bound of replicas.
   * @default 10
   */
  readonly maxReplicas?: number;
  /**
   * Target average CPU utilization, percent of the request.
   * @default 70
   */
  readonly cpuUtilizationPercent?: number;
  /**
   * Target average memory utilization, percent of the request.
   * @default 80
   */
  readonly memoryUtilizationPercent?: number;
}

/** Props of {@link AuditServer}. */
export interface AuditServerProps {
  /**
   * Base name of every object.
   * @default 'audit-server'
   */
  readonly name?: string;
  /**
   * Namespace of every object.
   * @default 'smedrec-audit'
   */
  readonly namespace?: string;
  /**
   * Create the Namespace (labelled for Pod Security Standards `restricted`) and its default-deny
   * NetworkPolicy. Turn off when the namespace is managed elsewhere.
   * @default true
   */
  readonly createNamespace?: boolean;
  /**
   * Image repository.
   * @default 'ghcr.io/smedrec/audit-server'
   */
  readonly imageRepository?: string;
  /**
   * Image tag (never `latest`).
   * @default - the package version, {@link AUDIT_SERVER_VERSION}
   */
  readonly imageTag?: string;
  /**
   * Secret with the keys `database-url`, `redis-url`, `signing-key`, `bootstrap-api-key`
   * (optional) and `migration-database-url`.
   * @default 'audit-server-secrets'
   */
  readonly secretName?: string;
  /**
   * Key of the connection string of the migration role (owner of the schema). Only the Job / init
   * container uses it; the api and the worker use `database-url` (the runtime role
   * `audit_runtime`: SELECT/INSERT, UPDATE only where a trigger narrows it, and partition upkeep
   * through the one SECURITY DEFINER function the server's migration 0006 grants it).
   * @default 'migration-database-url'
   */
  readonly migrationDatabaseUrlKey?: string;
  /**
   * Typed non-secret configuration.
   * @default - server defaults, NODE_ENV=production
   */
  readonly config?: AuditServerConfig;
  /**
   * Replicas of the api; also the HPA minimum when autoscaling is on.
   * @default 3
   */
  readonly replicas?: number;
  /**
   * Autoscale the api with an autoscaling/v2 HPA (the Deployment then has no `replicas`).
   * @default true
   */
  readonly autoscalingEnabled?: boolean;
  /**
   * HPA tuning.
   * @default - 3–10 replicas, CPU 70 %, memory 80 %
   */
  readonly autoscaling?: AuditServerAutoscalingOptions;
  /**
   * Replicas of the worker Deployment (`AUDIT_ROLE=worker`).
   * @default 2
   */
  readonly workerReplicas?: number;
  /**
   * How migrations run.
   * @default MigrationMode.JOB_PRE_SYNC
   */
  readonly migrations?: MigrationMode;
  /**
   * Create the Ingress.
   * @default true
   */
  readonly ingressEnabled?: boolean;
  /**
   * Ingress settings.
   * @default - see {@link AuditServerIngressOptions}
   */
  readonly ingress?: AuditServerIngressOptions;
  /**
   * Resources of the api container.
   * @default - requests 500m / 512Mi / 128Mi ephemeral, limits 1 / 1Gi / 512Mi
   */
  readonly apiResources?: ContainerResources;
  /**
   * Resources of the worker and migration containers.
   * @default - requests 250m / 256Mi / 128Mi ephemeral, limits 1 / 512Mi / 512Mi
   */
  readonly workerResources?: ContainerResources;
  /**
   * PostgreSQL the api, worker and migrations may reach (egress NetworkPolicy).
   * @default - any address on TCP 5432
   */
  readonly database?: NetworkPeer;
  /**
   * Redis the api and worker may reach.
   * @default - any address on TCP 6379
   */
  readonly redis?: NetworkPeer;
  /**
   * OTLP collector the api and worker may reach.
   * @default - no egress for telemetry
   */
  readonly otlpCollector?: NetworkPeer;
  /**
   * The ingress controller pods allowed to reach the api.
   * @default - pods labelled app.kubernetes.io/name=ingress-nginx in namespace ingress-nginx
   */
  readonly ingressController?: NetworkPeer;
  /**
   * Prometheus (or another scraper) allowed to read `/metrics` from api and worker pods.
   * @default - any pod in namespace `monitoring`
   */
  readonly metricsScraper?: NetworkPeer;
  /**
   * Seconds the preStop hook waits before SIGTERM, so endpoints controllers and ingress
   * controllers stop routing to the pod first.
   * @default 10
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

/** Port the server listens on (`PORT`, server/src/config.ts). */
export const AUDIT_SERVER_PORT = 3000;

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
    const replicas = props.replicas ?? 3;
    const autoscalingEnabled = props.autoscalingEnabled ?? true;
    const maxReplicas = props.autoscaling?.maxReplicas ?? 10;
    const workerReplicas = props.workerReplicas ?? 2;
    const preStop = props.preStopDelaySeconds ?? 10;
    const config = props.config ?? {};
    const shutdownTimeoutMs = config.shutdownTimeoutMs ?? 25_000;
    const bodyLimit = config.httpBodyLimitBytes ?? 8 * 1024 * 1024;
    const secretName = props.secretName ?? 'audit-server-secrets';
    const migrationUrlKey = props.migrationDatabaseUrlKey ?? 'migration-database-url';
    const apiResources = props.apiResources ?? DEFAULT_API_RESOURCES;
    const workerResources = props.workerResources ?? DEFAULT_WORKER_RESOURCES;

    if (!/^[a-z]([-a-z0-9]{0,40}[a-z0-9])?$/.test(this.name)) {
      throw new Error(`invalid name: '${this.name}' (expected a DNS label of at most 42 characters)`);
    }
    if (!Number.isInteger(replicas) || replicas < 1) {
      throw new Error(`invalid replicas: ${replicas} (expected an integer >= 1)`);
    }
    if (autoscalingEnabled && replicas < 2) {
      throw new Error(`invalid replicas: ${replicas} (the HPA minimum must be >= 2 for availability)`);
    }
    if (autoscalingEnabled && maxReplicas < replicas) {
      throw new Error(`invalid autoscaling.maxReplicas: ${maxReplicas} (expected >= replicas ${replicas})`);
    }
    if (!Number.isInteger(workerReplicas) || workerReplicas < 1) {
      throw new Error(`invalid workerReplicas: ${workerReplicas} (expected an integer >= 1)`);
    }
    const origin = config.auditLogOrigin ?? 'smedrec.audit';
    if (!/^[\x21-\x7e]+$/.test(origin)) {
      throw new Error(`invalid config.auditLogOrigin: '${origin}' (expected printable ascii without spaces)`);
    }
    for (const o of config.corsOrigins ?? []) {
      if (!/^https?:\/\/[^/,\s]+$/.test(o)) {
        throw new Error(`invalid config.corsOrigins: '${o}' (expected scheme://host[:port] without a path)`);
      }
    }
    for (const [prop, r] of [
      ['apiResources', apiResources],
      ['workerResources', workerResources],
    ] as const) {
      for (const [k, v] of Object.entries(r)) checkQuantity(`${prop}.${k}`, v as string);
    }

    const partOf = PART_OF;
    const ns = this.namespace;
    const meta = (name: string, labels: Record<string, string>): k8s.ObjectMeta => ({ name, namespace: ns, labels });
    this.podLabels = { 'app.kubernetes.io/name': 'audit-server', 'app.kubernetes.io/instance': this.name };
    this.apiSelector = selectorLabels('audit-server', this.name, 'api');
    this.workerSelector = selectorLabels('audit-server', this.name, 'worker');
    const labels = (component: string) => recommendedLabels('audit-server', this.name, component, partOf, tag);

    // ---- namespace ----------------------------------------------------------------------------
    if (props.createNamespace ?? true) {
      this.namespaceObject = new k8s.KubeNamespace(this, 'Namespace', {
        metadata: {
          name: ns,
          labels: {
            // Pod Security Admission enforces `restricted` on every pod of the namespace.
            // https://kubernetes.io/docs/concepts/security/pod-security-admission/#pod-security-admission-labels-for-namespaces
            'pod-security.kubernetes.io/enforce': 'restricted',
            'pod-security.kubernetes.io/enforce-version': 'latest',
            'pod-security.kubernetes.io/audit': 'restricted',
            'pod-security.kubernetes.io/warn': 'restricted',
            'app.kubernetes.io/part-of': partOf,
          },
        },
      });
      setSyncWave(this.namespaceObject, SyncWaves.namespace);
      const deny = new k8s.KubeNetworkPolicy(this, 'DefaultDeny', {
        metadata: meta('default-deny-all', { 'app.kubernetes.io/part-of': partOf }),
        // An empty podSelector selects every pod; with both policy types and no rules, all
        // traffic not allowed by another policy is dropped.
        spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] },
      });
      setSyncWave(deny, SyncWaves.config);
    }

    // ---- service account and configuration ----------------------------------------------------
    const sa = new k8s.KubeServiceAccount(this, 'ServiceAccount', {
      metadata: meta(this.name, labels('server')),
      // The server never talks to the Kubernetes API, so it gets no token.
      automountServiceAccountToken: false,
    });
    setSyncWave(sa, SyncWaves.config);

    const configData: Record<string, string> = {
      NODE_ENV: 'production',
      PORT: String(AUDIT_SERVER_PORT),
      HOST: '0.0.0.0',
      LOG_LEVEL: config.logLevel ?? LogLevel.INFO,
      AUDIT_LOG_ORIGIN: origin,
      CORS_ORIGINS: (config.corsOrigins ?? []).join(','),
      OTEL_SERVICE_NAME: config.otelServiceName ?? 'audit-server',
      RATE_LIMIT_PER_MINUTE: String(config.rateLimitPerMinute ?? 6000),
      DATABASE_POOL_MAX: String(config.databasePoolMax ?? 10),
      HTTP_BODY_LIMIT_BYTES: String(bodyLimit),
      SHUTDOWN_TIMEOUT_MS: String(shutdownTimeoutMs),
      // Client IPs arrive through the ingress controller inside the cluster network.
      TRUST_PROXY: 'loopback, linklocal, uniquelocal',
      // The Job / init container applies migrations; the long-running roles only check them.
      DATABASE_MIGRATE_ON_START: 'false',
    };
    if (config.otelExporterOtlpEndpoint !== undefined) {
      configData.OTEL_EXPORTER_OTLP_ENDPOINT = config.otelExporterOtlpEndpoint;
    }
    const configMap = new k8s.KubeConfigMap(this, 'Config', {
      metadata: meta(`${this.name}-config`, labels('server')),
      data: configData,
    });
    setSyncWave(configMap, SyncWaves.config);

    const secret = (key: string): SecretKeyReference => ({ secretName, key });
    const commonEnv = (role: string, databaseUrlKey: string): k8s.EnvVar[] => [
      { name: 'AUDIT_ROLE', value: role },
      secretEnv('DATABASE_URL', secret(databaseUrlKey)),
      secretEnv('REDIS_URL', secret('redis-url')),
      // loadConfig() refuses NODE_ENV=production without a signing key, in every role.
      secretEnv('AUDIT_SIGNING_KEY', secret('signing-key')),
      secretEnv('AUDIT_BOOTSTRAP_API_KEY', secret('bootstrap-api-key'), true),
    ];
    const envFrom: k8s.EnvFromSource[] = [{ configMapRef: { name: configMap.name } }];
    const tmpMount: k8s.VolumeMount = { name: 'tmp', mountPath: '/tmp' };

    const migrateContainer = (name: string): k8s.Container => ({
      name,
      image: this.image,
      imagePullPolicy: 'IfNotPresent',
      envFrom,
      env: commonEnv('migrate', migrationUrlKey),
      resources: toResourceRequirements(workerResources),
      securityContext: restrictedContainerSecurityContext(),
      volumeMounts: [tmpMount],
    });

    const serverContainer = (
      name: string,
      role: string,
      resources: ContainerResources,
      databaseUrlKey: string,
    ): k8s.Container => ({
      name,
      image: this.image,
      imagePullPolicy: 'IfNotPresent',
      ports: [{ name: 'http', containerPort: AUDIT_SERVER_PORT, protocol: 'TCP' }],
      envFrom,
      env: commonEnv(role, databaseUrlKey),
      resources: toResourceRequirements(resources),
      securityContext: restrictedContainerSecurityContext(),
      volumeMounts: [tmpMount],
      // The startup probe holds liveness off while the process boots and checks migrations;
      // 30 × 5 s gives a slow start 150 s before the kubelet restarts it.
      startupProbe: {
        httpGet: { path: '/health', port: k8s.IntOrString.fromString('http') },
        periodSeconds: 5,
        timeoutSeconds: 3,
        failureThreshold: 30,
      },
      // Seed values: liveness 30/10/5/3, readiness 10/5/3/3 (initialDelay/period/timeout/failures).
      livenessProbe: {
        httpGet: { path: '/health', port: k8s.IntOrString.fromString('http') },
        initialDelaySeconds: 30,
        periodSeconds: 10,
        timeoutSeconds: 5,
        failureThreshold: 3,
      },
      readinessProbe: {
        httpGet: { path: '/ready', port: k8s.IntOrString.fromString('http') },
        initialDelaySeconds: 10,
        periodSeconds: 5,
        timeoutSeconds: 3,
        failureThreshold: 3,
      },
      // Keep serving while endpoints and the ingress controller converge on the pod's removal;
      // SIGTERM only follows the hook. `sleep` exists in the alpine-based image.
      lifecycle: { preStop: { exec: { command: ['sleep', String(preStop)] } } },
    });

    const initContainers = this.migrations === MigrationMode.INIT_CONTAINER ? [migrateContainer('migrate')] : undefined;
    // preStop delay + the server's own shutdown deadline + 10 s margin before SIGKILL.
    const terminationGracePeriodSeconds = preStop + Math.ceil(shutdownTimeoutMs / 1000) + 10;

    const podSpec = (container: k8s.Container, selector: Record<string, string>): k8s.PodSpec => ({
      serviceAccountName: sa.name,
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      securityContext: restrictedPodSecurityContext(),
      terminationGracePeriodSeconds,
      ...(initContainers ? { initContainers } : {}),
      containers: [container],
      volumes: [emptyDirVolume('tmp', '256Mi')],
      // Spread over zones when the cluster has several (best effort) and never stack two
      // replicas on one node while another node has room.
      topologySpreadConstraints: [
        {
          maxSkew: 1,
          topologyKey: 'topology.kubernetes.io/zone',
          whenUnsatisfiable: 'ScheduleAnyway',
          labelSelector: { matchLabels: selector },
        },
        {
          maxSkew: 1,
          topologyKey: 'kubernetes.io/hostname',
          whenUnsatisfiable: 'DoNotSchedule',
          labelSelector: { matchLabels: selector },
        },
      ],
    });

    const scrapeAnnotations = {
      'prometheus.io/scrape': 'true',
      'prometheus.io/port': String(AUDIT_SERVER_PORT),
      'prometheus.io/path': '/metrics',
    };

    // ---- api ----------------------------------------------------------------------------------
    this.apiDeployment = new k8s.KubeDeployment(this, 'Resource', {
      metadata: meta(this.name, labels('api')),
      spec: {
        // With an HPA the Deployment must not set replicas, or every apply resets the scale.
        ...(autoscalingEnabled ? {} : { replicas }),
        revisionHistoryLimit: 5,
        selector: { matchLabels: this.apiSelector },
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: k8s.IntOrString.fromNumber(1), maxUnavailable: k8s.IntOrString.fromNumber(0) } },
        template: {
          metadata: { labels: labels('api'), annotations: scrapeAnnotations },
          spec: podSpec(serverContainer('api', 'api', apiResources, 'database-url'), this.apiSelector),
        },
      },
    });
    setSyncWave(this.apiDeployment, SyncWaves.app);

    // ---- worker -------------------------------------------------------------------------------
    this.workerDeployment = new k8s.KubeDeployment(this, 'Worker', {
      metadata: meta(`${this.name}-worker`, labels('worker')),
      spec: {
        replicas: workerReplicas,
        revisionHistoryLimit: 5,
        selector: { matchLabels: this.workerSelector },
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: k8s.IntOrString.fromNumber(1), maxUnavailable: k8s.IntOrString.fromNumber(0) } },
        template: {
          metadata: { labels: labels('worker'), annotations: scrapeAnnotations },
          spec: podSpec(serverContainer('worker', 'worker', workerResources, 'database-url'), this.workerSelector),
        },
      },
    });
    setSyncWave(this.workerDeployment, SyncWaves.app);

    // ---- migrations ---------------------------------------------------------------------------
    if (this.migrations !== MigrationMode.INIT_CONTAINER) {
      const migrateSelector = selectorLabels('audit-server', this.name, 'migrate');
      // The version is part of the name: a Job's pod template is immutable, so a plain
      // `kubectl apply` of a new version creates a new Job instead of failing.
      const jobName = `${this.name}-migrate-${tag.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}`.slice(0, 63).replace(/-+$/, '');
      const hook = this.migrations === MigrationMode.JOB_PRE_SYNC ? 'PreSync' : 'Sync';
      this.migrationJob = new k8s.KubeJob(this, 'Migrate', {
        metadata: {
          ...meta(jobName, labels('migrate')),
          annotations: {
            // https://argo-cd.readthedocs.io/en/stable/user-guide/resource_hooks/
            'argocd.argoproj.io/hook': hook,
            'argocd.argoproj.io/hook-delete-policy': 'BeforeHookCreation',
          },
        },
        spec: {
          // Retries with exponential back-off (10 s, 20 s, … capped at 6 min) while the
          // database comes up on a fresh cluster.
          backoffLimit: 6,
          activeDeadlineSeconds: 1800,
          ttlSecondsAfterFinished: 86_400,
          template: {
            metadata: { labels: labels('migrate') },
            spec: {
              serviceAccountName: sa.name,
              automountServiceAccountToken: false,
              enableServiceLinks: false,
              restartPolicy: 'Never',
              securityContext: restrictedPodSecurityContext(),
              containers: [migrateContainer('migrate')],
              volumes: [emptyDirVolume('tmp', '256Mi')],
            },
          },
        },
      });
      if (this.migrations === MigrationMode.JOB_SYNC_WAVE) setSyncWave(this.migrationJob, SyncWaves.migrations);
      const np = new k8s.KubeNetworkPolicy(this, 'MigrateNetworkPolicy', {
        metadata: meta(`${this.name}-migrate`, labels('migrate')),
        spec: {
          podSelector: { matchLabels: migrateSelector },
          policyTypes: ['Ingress', 'Egress'],
          ingress: [],
          egress: [dnsEgressRule(), egressTo(props.database ?? { cidr: '0.0.0.0/0', port: 5432 })],
        },
      });
      setSyncWave(np, SyncWaves.config);
    }

    // ---- services -----------------------------------------------------------------------------
    this.serviceName = this.name;
    this.host = `${this.serviceName}.${ns}.svc.cluster.local`;
    this.service = new k8s.KubeService(this, 'Service', {
      metadata: meta(this.serviceName, labels('api')),
      spec: {
        type: 'ClusterIP',
        selector: this.apiSelector,
        ports: [{ name: 'http', port: this.port, targetPort: k8s.IntOrString.fromString('http'), protocol: 'TCP' }],
      },
    });
    setSyncWave(this.service, SyncWaves.app);
    const headless = new k8s.KubeService(this, 'HeadlessService', {
      metadata: meta(`${this.name}-headless`, labels('api')),
      spec: {
        clusterIp: 'None',
        // Pods are listed while still starting, for debugging and direct scraping.
        publishNotReadyAddresses: true,
        selector: this.apiSelector,
        ports: [{ name: 'http', port: AUDIT_SERVER_PORT, targetPort: k8s.IntOrString.fromString('http'), protocol: 'TCP' }],
      },
    });
    setSyncWave(headless, SyncWaves.app);

    // ---- autoscaling and disruption budgets ---------------------------------------------------
    if (autoscalingEnabled) {
      const hpa = new k8s.KubeHorizontalPodAutoscalerV2(this, 'Autoscaler', {
        metadata: meta(this.name, labels('api')),
        spec: {
          scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: this.apiDeployment.name },
          minReplicas: replicas,
          maxReplicas,
          metrics: [
            {
              type: 'Resource',
              resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: props.autoscaling?.cpuUtilizationPercent ?? 70 } },
            },
            {
              type: 'Resource',
              resource: { name: 'memory', target: { type: 'Utilization', averageUtilization: props.autoscaling?.memoryUtilizationPercent ?? 80 } },
            },
          ],
          // Seed behaviour: scale up by at most 50 % a minute after 60 s of stable signal, scale
          // down by at most 10 % a minute after 5 minutes, so load spikes do not thrash.
          behavior: {
            scaleUp: { stabilizationWindowSeconds: 60, policies: [{ type: 'Percent', value: 50, periodSeconds: 60 }] },
            scaleDown: { stabilizationWindowSeconds: 300, policies: [{ type: 'Percent', value: 10, periodSeconds: 60 }] },
          },
        },
      });
      setSyncWave(hpa, SyncWaves.edge);
    }
    for (const [id, name, selector] of [
      ['ApiDisruptionBudget', this.name, this.apiSelector],
      ['WorkerDisruptionBudget', `${this.name}-worker`, this.workerSelector],
    ] as const) {
      const pdb = new k8s.KubePodDisruptionBudget(this, id, {
        metadata: meta(name, labels(id === 'ApiDisruptionBudget' ? 'api' : 'worker')),
        // One voluntary eviction at a time: node drains proceed, capacity never drops by more.
        spec: disruptionBudgetSpec(selector),
      });
      setSyncWave(pdb, SyncWaves.edge);
    }

    // ---- network policies ---------------------------------------------------------------------
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
      ...(props.otlpCollector ? [egressTo(props.otlpCollector)] : []),
    ];
    const apiNp = new k8s.KubeNetworkPolicy(this, 'ApiNetworkPolicy', {
      metadata: meta(this.name, labels('api')),
      spec: {
        podSelector: { matchLabels: this.apiSelector },
        policyTypes: ['Ingress', 'Egress'],
        ingress: ingressFrom([ingressController, scraper], AUDIT_SERVER_PORT),
        egress,
      },
    });
    setSyncWave(apiNp, SyncWaves.config);
    const workerNp = new k8s.KubeNetworkPolicy(this, 'WorkerNetworkPolicy', {
      metadata: meta(`${this.name}-worker`, labels('worker')),
      spec: {
        podSelector: { matchLabels: this.workerSelector },
        policyTypes: ['Ingress', 'Egress'],
        ingress: ingressFrom([scraper], AUDIT_SERVER_PORT),
        egress,
      },
    });
    setSyncWave(workerNp, SyncWaves.config);

    // ---- ingress ------------------------------------------------------------------------------
    if (props.ingressEnabled ?? true) this.addIngress(props.ingress ?? {}, config.corsOrigins ?? [], bodyLimit, labels('api'));
  }

  private addIngress(
    opts: AuditServerIngressOptions,
    corsOrigins: readonly string[],
    bodyLimitBytes: number,
    labels: Record<string, string>,
  ): void {
    const host = opts.host ?? 'api.smedrec.com';
    const className = opts.className ?? 'nginx';
    const tlsSecretName = opts.tlsSecretName ?? `${this.name}-tls`;
    const rpm = opts.requestsPerMinutePerClient ?? 100;
    const timeout = opts.proxyTimeoutSeconds ?? 60;
    if (!Number.isInteger(rpm) || rpm < 1) {
      throw new Error(`invalid ingress.requestsPerMinutePerClient: ${rpm} (expected an integer >= 1)`);
    }
    const prefix = 'nginx.ingress.kubernetes.io';
    // Annotation names and value formats from
    // https://kubernetes.github.io/ingress-nginx/user-guide/nginx-configuration/annotations/
    const annotations: Record<string, string> = {
      'cert-manager.io/cluster-issuer': opts.clusterIssuer ?? 'letsencrypt-prod',
      [`${prefix}/ssl-redirect`]: 'true',
      [`${prefix}/force-ssl-redirect`]: 'true',
      // Rate limits are per client IP: 100 requests a minute and a bounded number of
      // concurrent connections; excess requests get 503 from the controller.
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
        [`${prefix}/cors-allow-headers`]:
          'Authorization, Content-Type, Accept, X-Api-Key, X-Request-Id, Idempotency-Key, trpc-accept',
        [`${prefix}/cors-expose-headers`]: 'X-Request-Id, Retry-After',
        [`${prefix}/cors-allow-credentials`]: 'true',
        [`${prefix}/cors-max-age`]: '600',
      });
    }
    const backend: k8s.IngressBackend = { service: { name: this.serviceName, port: { name: 'http' } } };
    const ingress = new k8s.KubeIngress(this, 'Ingress', {
      metadata: { name: this.name, namespace: this.namespace, labels, annotations },
      spec: {
        ingressClassName: className,
        tls: [{ hosts: [host], secretName: tlsSecretName }],
        rules: [
          {
            host,
            http: { paths: AUDIT_SERVER_INGRESS_PATHS.map((path) => ({ path, pathType: 'Prefix', backend })) },
          },
        ],
      },
    });
    setSyncWave(ingress, SyncWaves.edge);
    // `/` would also publish `/metrics`. A second Ingress for exactly that path denies every
    // source address (ingress-nginx applies annotations per location), so metrics stay
    // reachable only inside the cluster.
    const deny = new k8s.KubeIngress(this, 'MetricsDenyIngress', {
      metadata: {
        name: `${this.name}-metrics-deny`,
        namespace: this.namespace,
        labels,
        annotations: { [`${prefix}/denylist-source-range`]: '0.0.0.0/0,::/0' },
      },
      spec: {
        ingressClassName: className,
        tls: [{ hosts: [host], secretName: tlsSecretName }],
        rules: [{ host, http: { paths: [{ path: '/metrics', pathType: 'Exact', backend }] } }],
      },
    });
    setSyncWave(deny, SyncWaves.edge);
  }
}

