import { ApiObject, Yaml } from 'cdk8s';
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import type { AuditServer } from './audit-server';
import type { ContainerResources } from './container-resources';
import type { NetworkPeer } from './network-peer';
import type { SecretKeyReference } from './secret-reference';
import { PART_OF } from './version';
import {
  checkDnsLabel,
  checkImage,
  contentHash,
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

/** Props of {@link ObservabilityStack}. */
export interface ObservabilityStackProps {
  /**
   * Namespace of the objects.
   * @default 'smedrec-audit'
   */
  readonly namespace?: string;
  /**
   * OpenTelemetry Collector (contrib distribution: it has the health_check and basicauth
   * extensions) image.
   * @default 'otel/opentelemetry-collector-contrib:0.116.1'
   */
  readonly collectorImage?: string;
  /**
   * Collector replicas.
   * @default 2
   */
  readonly collectorReplicas?: number;
  /**
   * Collector resources.
   * @default - requests 100m / 256Mi / 64Mi ephemeral, limits 1 / 512Mi / 256Mi
   */
  readonly collectorResources?: ContainerResources;
  /**
   * OpenObserve image.
   * @default 'public.ecr.aws/zinclabs/openobserve:v0.14.0'
   */
  readonly openObserveImage?: string;
  /**
   * Secret with the OpenObserve root user (`ZO_ROOT_USER_EMAIL`/`ZO_ROOT_USER_PASSWORD`); the
   * collector authenticates with the same credentials.
   * @default 'openobserve-root' with keys `email` and `password`
   */
  readonly rootCredentialsSecretName?: string;
  /**
   * OpenObserve organization the collector writes to.
   * @default 'default'
   */
  readonly organization?: string;
  /**
   * OpenObserve data volume, GiB.
   * @default 20
   */
  readonly storageGiB?: number;
  /**
   * StorageClass of the OpenObserve volume.
   * @default - the cluster's default StorageClass
   */
  readonly storageClassName?: string;
  /**
   * OpenObserve resources.
   * @default - requests 250m / 512Mi / 128Mi ephemeral, limits 2 / 2Gi / 1Gi
   */
  readonly openObserveResources?: ContainerResources;
  /**
   * Pods that send telemetry to the collector (OTLP gRPC 4317 and HTTP 4318).
   * @default - pods labelled app.kubernetes.io/part-of=smedrec-audit in the same namespace
   */
  readonly telemetrySources?: NetworkPeer[];
  /**
   * Extra peers allowed to reach the OpenObserve UI/API on 5080 (the collector always is).
   * @default - none
   */
  readonly openObserveClients?: NetworkPeer[];
}

/** Options of {@link ObservabilityStack.addPrometheusMonitoring}. */
export interface PrometheusMonitoringOptions {
  /**
   * Labels Prometheus uses to select ServiceMonitors, PodMonitors and rules
   * (`serviceMonitorSelector`, `ruleSelector`).
   * @default - none
   */
  readonly selectorLabels?: { [key: string]: string };
  /**
   * Scrape interval.
   * @default '30s'
   */
  readonly scrapeInterval?: string;
}

/** One Prometheus alerting rule. */
export interface AlertRule {
  /** Alert name. */
  readonly alert: string;
  /** PromQL expression; the alert fires while it returns series. */
  readonly expr: string;
  /** How long the expression must hold before firing (the rule's `for`; renamed: a keyword in jsii target languages). */
  readonly forDuration: string;
  /** `warning` or `critical`. */
  readonly severity: string;
  /** One-line summary. */
  readonly summary: string;
}

const OTLP_GRPC_PORT = 4317;
const OTLP_HTTP_PORT = 4318;
const HEALTH_PORT = 13133;
const OPENOBSERVE_PORT = 5080;

/**
 * Alerting rules of the audit server. Every metric name used here must be one the server
 * exposes (`server/src/observability/metric-names.ts`); a test enforces it.
 */
export function auditServerAlertRules(namespace: string, serviceName: string): AlertRule[] {
  const sel = `namespace="${namespace}"`;
  return [
    {
      alert: 'AuditServerDown',
      expr: `sum(up{${sel}, service="${serviceName}"}) == 0`,
      forDuration: '2m',
      severity: 'critical',
      summary: 'No audit server api replica is being scraped successfully.',
    },
    {
      alert: 'AuditServerHighErrorRate',
      expr:
        `sum(rate(http_requests_total{${sel}, status=~"5.."}[5m]))` +
        ` / sum(rate(http_requests_total{${sel}}[5m])) > 0.05`,
      forDuration: '10m',
      severity: 'warning',
      summary: 'More than 5 % of HTTP requests fail with a 5xx status.',
    },
    {
      alert: 'AuditServerHighLatency',
      expr: `histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{${sel}}[5m]))) > 1`,
      forDuration: '10m',
      severity: 'warning',
      summary: 'p99 HTTP latency is above one second.',
    },
    {
      alert: 'AuditLedgerVerificationFailed',
      expr: `increase(audit_ledger_verification_failures_total{${sel}}[15m]) > 0`,
      forDuration: '0m',
      severity: 'critical',
      summary: 'The ledger self-audit found a proof that does not verify: possible tampering.',
    },
    {
      alert: 'AuditLedgerVerificationStale',
      expr: `time() - max(audit_ledger_last_verification_success_timestamp_seconds{${sel}}) > 7200`,
      forDuration: '15m',
      severity: 'warning',
      summary: 'No successful ledger self-audit for two hours.',
    },
    {
      alert: 'AuditDatabaseDown',
      expr: `max(audit_database_up{${sel}}) == 0`,
      forDuration: '2m',
      severity: 'critical',
      summary: 'The audit server cannot reach PostgreSQL: ingestion is failing.',
    },
    {
      alert: 'AuditRedisDown',
      expr: `max(audit_redis_up{${sel}}) == 0`,
      forDuration: '5m',
      severity: 'warning',
      summary: 'Redis is unreachable: rate limits are local and the cache is off (no data loss).',
    },
    {
      alert: 'AuditIngestRejectionsHigh',
      expr:
        `sum(rate(audit_events_rejected_total{${sel}}[10m]))` +
        ` / clamp_min(sum(rate(audit_events_ingested_total{${sel}}[10m])) + sum(rate(audit_events_rejected_total{${sel}}[10m])), 1e-9) > 0.1`,
      forDuration: '15m',
      severity: 'warning',
      summary: 'More than 10 % of submitted events are rejected: a producer is sending bad events.',
    },
    {
      alert: 'AuditServerMemoryHigh',
      expr: `max(process_resident_memory_bytes{${sel}, service="${serviceName}"}) > 900 * 1024 * 1024`,
      forDuration: '15m',
      severity: 'warning',
      summary: 'An api replica uses more than 900 MiB resident memory (limit 1 GiB).',
    },
  ];
}

/**
 * Telemetry for the stack: an OpenTelemetry Collector (OTLP in, OpenObserve out) and an
 * OpenObserve StatefulSet; on request, prometheus-operator ServiceMonitor/PodMonitor and
 * PrometheusRule objects for the audit server.
 */
export class ObservabilityStack extends Construct {
  /**
   * Alerting rules of the audit server in `namespace`, scraped through the Service
   * `serviceName` (see {@link auditServerAlertRules}).
   */
  public static alertRules(namespace: string, serviceName: string): AlertRule[] {
    return auditServerAlertRules(namespace, serviceName);
  }

  /** Namespace. */
  public readonly namespace: string;
  /** OTLP/HTTP endpoint for `OTEL_EXPORTER_OTLP_ENDPOINT`. */
  public readonly otlpHttpEndpoint: string;
  /** NetworkPolicy peer of the collector (OTLP/HTTP port), for `AuditServerProps.otlpCollector`. */
  public readonly otlpPeer: NetworkPeer;
  /** In-cluster URL of OpenObserve. */
  public readonly openObserveUrl: string;
  /** Root user e-mail of OpenObserve. */
  public readonly rootEmailSecret: SecretKeyReference;
  /** Root user password of OpenObserve. */
  public readonly rootPasswordSecret: SecretKeyReference;
  /** The collector Deployment. */
  public readonly collector: k8s.KubeDeployment;
  /** The OpenObserve StatefulSet. */
  public readonly openObserve: k8s.KubeStatefulSet;

  constructor(scope: Construct, id: string, props: ObservabilityStackProps = {}) {
    super(scope, id);
    this.namespace = props.namespace ?? 'smedrec-audit';
    checkDnsLabel('namespace', this.namespace);
    const ns = this.namespace;
    const credentials = props.rootCredentialsSecretName ?? 'openobserve-root';
    this.rootEmailSecret = { secretName: credentials, key: 'email' };
    this.rootPasswordSecret = { secretName: credentials, key: 'password' };
    const organization = props.organization ?? 'default';
    if (!/^[a-z0-9_]+$/.test(organization)) {
      throw new Error(`invalid organization: '${organization}' (expected lower-case letters, digits and _)`);
    }
    const collectorReplicas = props.collectorReplicas ?? 2;
    if (!Number.isInteger(collectorReplicas) || collectorReplicas < 1) {
      throw new Error(`invalid collectorReplicas: ${collectorReplicas} (expected an integer >= 1)`);
    }
    const collectorImage = props.collectorImage ?? 'otel/opentelemetry-collector-contrib:0.116.1';
    const openObserveImage = props.openObserveImage ?? 'public.ecr.aws/zinclabs/openobserve:v0.14.0';
    checkImage('collectorImage', collectorImage);
    checkImage('openObserveImage', openObserveImage);

    const ooName = 'openobserve';
    this.openObserveUrl = `http://${ooName}.${ns}.svc.cluster.local:${OPENOBSERVE_PORT}`;
    const collectorName = 'otel-collector';
    this.otlpHttpEndpoint = `http://${collectorName}.${ns}.svc.cluster.local:${OTLP_HTTP_PORT}`;
    const collectorSelector = selectorLabels('opentelemetry-collector', collectorName, 'telemetry');
    const ooSelector = selectorLabels('openobserve', ooName, 'telemetry-store');
    this.otlpPeer = { podLabels: collectorSelector, namespace: ns, port: OTLP_HTTP_PORT };
    const collectorLabels = recommendedLabels('opentelemetry-collector', collectorName, 'telemetry', PART_OF);
    const ooLabels = recommendedLabels('openobserve', ooName, 'telemetry-store', PART_OF);

    // ---- collector ----------------------------------------------------------------------------
    // https://opentelemetry.io/docs/collector/configuration/
    const collectorConfig = Yaml.stringify({
      extensions: {
        health_check: { endpoint: `0.0.0.0:${HEALTH_PORT}` },
        // `${env:…}` is expanded by the collector at start from the Secret-backed variables.
        'basicauth/openobserve': {
          client_auth: { username: '${env:OPENOBSERVE_USER}', password: '${env:OPENOBSERVE_PASSWORD}' },
        },
      },
      receivers: {
        otlp: {
          protocols: {
            grpc: { endpoint: `0.0.0.0:${OTLP_GRPC_PORT}` },
            http: { endpoint: `0.0.0.0:${OTLP_HTTP_PORT}` },
          },
        },
      },
      processors: {
        // Refuse data before the container limit is hit instead of being OOM-killed.
        memory_limiter: { check_interval: '1s', limit_percentage: 80, spike_limit_percentage: 20 },
        batch: { timeout: '5s', send_batch_size: 1024 },
      },
      exporters: {
        // OpenObserve accepts OTLP/HTTP under /api/<organization>/v1/{traces,metrics,logs}.
        'otlphttp/openobserve': {
          endpoint: `${this.openObserveUrl}/api/${organization}`,
          auth: { authenticator: 'basicauth/openobserve' },
          retry_on_failure: { enabled: true, max_elapsed_time: '300s' },
          sending_queue: { enabled: true, queue_size: 5000 },
        },
      },
      service: {
        extensions: ['health_check', 'basicauth/openobserve'],
        pipelines: Object.fromEntries(
          ['traces', 'metrics', 'logs'].map((signal) => [
            signal,
            { receivers: ['otlp'], processors: ['memory_limiter', 'batch'], exporters: ['otlphttp/openobserve'] },
          ]),
        ),
      },
    });
    const collectorConfigMap = new k8s.KubeConfigMap(this, 'CollectorConfig', {
      metadata: { name: `${collectorName}-config`, namespace: ns, labels: collectorLabels },
      data: { 'config.yaml': collectorConfig },
    });
    setSyncWave(collectorConfigMap, SyncWaves.config);

    this.collector = new k8s.KubeDeployment(this, 'Collector', {
      metadata: { name: collectorName, namespace: ns, labels: collectorLabels },
      spec: {
        replicas: collectorReplicas,
        selector: { matchLabels: collectorSelector },
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: k8s.IntOrString.fromNumber(1), maxUnavailable: k8s.IntOrString.fromNumber(0) } },
        template: {
          metadata: { labels: collectorLabels, annotations: { 'checksum/config': contentHash(collectorConfig) } },
          spec: {
            automountServiceAccountToken: false,
            enableServiceLinks: false,
            securityContext: restrictedPodSecurityContext(),
            containers: [
              {
                name: 'collector',
                image: collectorImage,
                imagePullPolicy: 'IfNotPresent',
                args: ['--config=/conf/config.yaml'],
                ports: [
                  { name: 'otlp-grpc', containerPort: OTLP_GRPC_PORT, protocol: 'TCP' },
                  { name: 'otlp-http', containerPort: OTLP_HTTP_PORT, protocol: 'TCP' },
                  { name: 'health', containerPort: HEALTH_PORT, protocol: 'TCP' },
                ],
                env: [secretEnv('OPENOBSERVE_USER', this.rootEmailSecret), secretEnv('OPENOBSERVE_PASSWORD', this.rootPasswordSecret)],
                resources: toResourceRequirements(
                  props.collectorResources ?? {
                    cpuRequest: '100m',
                    cpuLimit: '1',
                    memoryRequest: '256Mi',
                    memoryLimit: '512Mi',
                    ephemeralStorageRequest: '64Mi',
                    ephemeralStorageLimit: '256Mi',
                  },
                ),
                securityContext: restrictedContainerSecurityContext(),
                volumeMounts: [
                  { name: 'config', mountPath: '/conf', readOnly: true },
                  { name: 'tmp', mountPath: '/tmp' },
                ],
                // Alive while the receiver socket accepts; ready when the health_check extension
                // reports the pipelines running.
                livenessProbe: { tcpSocket: { port: k8s.IntOrString.fromString('otlp-grpc') }, periodSeconds: 10, timeoutSeconds: 3 },
                readinessProbe: { httpGet: { path: '/', port: k8s.IntOrString.fromString('health') }, periodSeconds: 5, timeoutSeconds: 3 },
              },
            ],
            volumes: [{ name: 'config', configMap: { name: collectorConfigMap.name } }, emptyDirVolume('tmp', '64Mi')],
            topologySpreadConstraints: [
              { maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: collectorSelector } },
            ],
          },
        },
      },
    });
    setSyncWave(this.collector, SyncWaves.data);
    setSyncWave(
      new k8s.KubeService(this, 'CollectorService', {
        metadata: { name: collectorName, namespace: ns, labels: collectorLabels },
        spec: {
          type: 'ClusterIP',
          selector: collectorSelector,
          ports: [
            // appProtocol lets service meshes and gateways pick HTTP/2 for gRPC.
            { name: 'otlp-grpc', port: OTLP_GRPC_PORT, targetPort: k8s.IntOrString.fromString('otlp-grpc'), protocol: 'TCP', appProtocol: 'grpc' },
            { name: 'otlp-http', port: OTLP_HTTP_PORT, targetPort: k8s.IntOrString.fromString('otlp-http'), protocol: 'TCP', appProtocol: 'http' },
          ],
        },
      }),
      SyncWaves.data,
    );
    setSyncWave(
      new k8s.KubePodDisruptionBudget(this, 'CollectorDisruptionBudget', {
        metadata: { name: collectorName, namespace: ns, labels: collectorLabels },
        spec: disruptionBudgetSpec(collectorSelector),
      }),
      SyncWaves.data,
    );
    const sources = props.telemetrySources ?? [{ podLabels: { 'app.kubernetes.io/part-of': PART_OF }, port: OTLP_HTTP_PORT }];
    const ooPeer: NetworkPeer = { podLabels: ooSelector, port: OPENOBSERVE_PORT };
    setSyncWave(
      new k8s.KubeNetworkPolicy(this, 'CollectorNetworkPolicy', {
        metadata: { name: collectorName, namespace: ns, labels: collectorLabels },
        spec: {
          podSelector: { matchLabels: collectorSelector },
          policyTypes: ['Ingress', 'Egress'],
          ingress: [...ingressFrom(sources, OTLP_GRPC_PORT), ...ingressFrom(sources, OTLP_HTTP_PORT)],
          egress: [dnsEgressRule(), egressTo(ooPeer)],
        },
      }),
      SyncWaves.config,
    );

    // ---- OpenObserve --------------------------------------------------------------------------
    const storageGiB = props.storageGiB ?? 20;
    if (!Number.isInteger(storageGiB) || storageGiB < 1) {
      throw new Error(`invalid storageGiB: ${storageGiB} (expected an integer >= 1)`);
    }
    const headless = `${ooName}-headless`;
    this.openObserve = new k8s.KubeStatefulSet(this, 'OpenObserve', {
      metadata: { name: ooName, namespace: ns, labels: ooLabels },
      spec: {
        replicas: 1,
        serviceName: headless,
        selector: { matchLabels: ooSelector },
        persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Retain' },
        template: {
          metadata: { labels: ooLabels },
          spec: {
            automountServiceAccountToken: false,
            enableServiceLinks: false,
            securityContext: restrictedPodSecurityContext(),
            containers: [
              {
                name: 'openobserve',
                image: openObserveImage,
                imagePullPolicy: 'IfNotPresent',
                ports: [{ name: 'http', containerPort: OPENOBSERVE_PORT, protocol: 'TCP' }],
                env: [
                  { name: 'ZO_DATA_DIR', value: '/data' },
                  { name: 'ZO_HTTP_PORT', value: String(OPENOBSERVE_PORT) },
                  // No usage reporting from a healthcare deployment.
                  { name: 'ZO_TELEMETRY', value: 'false' },
                  secretEnv('ZO_ROOT_USER_EMAIL', this.rootEmailSecret),
                  secretEnv('ZO_ROOT_USER_PASSWORD', this.rootPasswordSecret),
                ],
                resources: toResourceRequirements(
                  props.openObserveResources ?? {
                    cpuRequest: '250m',
                    cpuLimit: '2',
                    memoryRequest: '512Mi',
                    memoryLimit: '2Gi',
                    ephemeralStorageRequest: '128Mi',
                    ephemeralStorageLimit: '1Gi',
                  },
                ),
                securityContext: restrictedContainerSecurityContext(),
                volumeMounts: [
                  { name: 'data', mountPath: '/data' },
                  { name: 'tmp', mountPath: '/tmp' },
                ],
                startupProbe: { httpGet: { path: '/healthz', port: k8s.IntOrString.fromString('http') }, periodSeconds: 5, failureThreshold: 60 },
                livenessProbe: { tcpSocket: { port: k8s.IntOrString.fromString('http') }, periodSeconds: 10, timeoutSeconds: 3 },
                readinessProbe: { httpGet: { path: '/healthz', port: k8s.IntOrString.fromString('http') }, periodSeconds: 5, timeoutSeconds: 3 },
              },
            ],
            volumes: [emptyDirVolume('tmp', '512Mi')],
          },
        },
        volumeClaimTemplates: [
          {
            metadata: { name: 'data', labels: ooLabels },
            spec: {
              accessModes: ['ReadWriteOnce'],
              ...(props.storageClassName ? { storageClassName: props.storageClassName } : {}),
              resources: { requests: { storage: k8s.Quantity.fromString(`${storageGiB}Gi`) } },
            },
          },
        ],
      },
    });
    setSyncWave(this.openObserve, SyncWaves.data);
    const ooPort: k8s.ServicePort = { name: 'http', port: OPENOBSERVE_PORT, targetPort: k8s.IntOrString.fromString('http'), protocol: 'TCP' };
    setSyncWave(
      new k8s.KubeService(this, 'OpenObserveService', {
        metadata: { name: ooName, namespace: ns, labels: ooLabels },
        spec: { type: 'ClusterIP', selector: ooSelector, ports: [ooPort] },
      }),
      SyncWaves.data,
    );
    setSyncWave(
      new k8s.KubeService(this, 'OpenObserveHeadlessService', {
        metadata: { name: headless, namespace: ns, labels: ooLabels },
        spec: { clusterIp: 'None', selector: ooSelector, ports: [ooPort] },
      }),
      SyncWaves.data,
    );
    setSyncWave(
      new k8s.KubePodDisruptionBudget(this, 'OpenObserveDisruptionBudget', {
        metadata: { name: ooName, namespace: ns, labels: ooLabels },
        spec: disruptionBudgetSpec(ooSelector),
      }),
      SyncWaves.data,
    );
    setSyncWave(
      new k8s.KubeNetworkPolicy(this, 'OpenObserveNetworkPolicy', {
        metadata: { name: ooName, namespace: ns, labels: ooLabels },
        spec: {
          podSelector: { matchLabels: ooSelector },
          policyTypes: ['Ingress', 'Egress'],
          ingress: ingressFrom([{ podLabels: collectorSelector, port: OPENOBSERVE_PORT }, ...(props.openObserveClients ?? [])], OPENOBSERVE_PORT),
          egress: [dnsEgressRule()],
        },
      }),
      SyncWaves.config,
    );
  }

  /**
   * Adds prometheus-operator objects for `server` to `scope`: a ServiceMonitor for the api
   * Service, a PodMonitor for the worker pods and a PrometheusRule with
   * {@link auditServerAlertRules}. Pass a separate chart as `scope` when the CRDs may be absent
   * where the rest of the stack is applied.
   */
  public addPrometheusMonitoring(scope: Construct, server: AuditServer, options: PrometheusMonitoringOptions = {}): void {
    const interval = options.scrapeInterval ?? '30s';
    if (!/^[0-9]+(ms|s|m|h)$/.test(interval)) {
      throw new Error(`invalid scrapeInterval: '${interval}' (expected a prometheus duration such as 30s)`);
    }
    const labels = { ...recommendedLabels('audit-server', server.name, 'monitoring', PART_OF), ...(options.selectorLabels ?? {}) };
    const metadata = (name: string) => ({
      name,
      namespace: server.namespace,
      labels,
      // The CRDs come with prometheus-operator; Argo CD must not fail the dry run before they exist.
      annotations: { 'argocd.argoproj.io/sync-options': 'SkipDryRunOnMissingResource=true' },
    });
    new ApiObject(scope, `${server.node.id}ServiceMonitor`, {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'ServiceMonitor',
      metadata: metadata(server.serviceName),
      spec: {
        selector: { matchLabels: server.apiSelector },
        namespaceSelector: { matchNames: [server.namespace] },
        endpoints: [{ port: 'http', path: '/metrics', interval, scheme: 'http' }],
      },
    });
    new ApiObject(scope, `${server.node.id}WorkerPodMonitor`, {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PodMonitor',
      metadata: metadata(`${server.name}-worker`),
      spec: {
        selector: { matchLabels: server.workerSelector },
        namespaceSelector: { matchNames: [server.namespace] },
        podMetricsEndpoints: [{ port: 'http', path: '/metrics', interval, scheme: 'http' }],
      },
    });
    new ApiObject(scope, `${server.node.id}PrometheusRule`, {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PrometheusRule',
      metadata: metadata(server.name),
      spec: {
        groups: [
          {
            name: 'smedrec-audit.rules',
            rules: auditServerAlertRules(server.namespace, server.serviceName).map((r) => ({
              alert: r.alert,
              expr: r.expr,
              for: r.forDuration,
              labels: { severity: r.severity },
              annotations: { summary: r.summary },
            })),
          },
        ],
      },
    });
  }
}
