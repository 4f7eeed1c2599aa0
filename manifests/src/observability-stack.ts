import { ApiObject } from 'cdk8s';
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import type { AuditServer } from './audit-server';
import type { ContainerResources } from './container-resources';
import { overviewDashboard } from './grafana-dashboards';
import type { NetworkPeer } from './network-peer';
import { OTLP_HTTP_PORT, OtelCollector } from './otel-collector';
import { PodNetworkPolicy } from './pod-network-policy';
import type { SecretKeyReference } from './secret-reference';
import { StatefulService } from './stateful-service';
import { PART_OF } from './version';
import {
  checkDnsLabel,
  checkImage,
  checkInteger,
  dnsEgressRule,
  emptyDirVolume,
  hardenedContainer,
  ingressFrom,
  objectMeta,
  recommendedLabels,
  secretEnv,
  selectorLabels,
  toResourceRequirements,
} from './workload-defaults';

/** Props of {@link ObservabilityStack}. */
export interface ObservabilityStackProps {
  /**
   * Namespace of the objects.
   * @default 'smedrec-audit'
   * @see https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/
   */
  readonly namespace?: string;
  /**
   * OpenTelemetry Collector (contrib distribution: it has the health_check and basicauth
   * extensions) image.
   * @default 'otel/opentelemetry-collector-contrib:0.116.1'
   * @see https://kubernetes.io/docs/concepts/containers/images/
   */
  readonly collectorImage?: string;
  /**
   * Collector replicas.
   * @default 2
   * @see https://kubernetes.io/docs/concepts/workloads/controllers/deployment/
   */
  readonly collectorReplicas?: number;
  /**
   * Collector resources.
   * @default - requests 100m / 256Mi / 64Mi ephemeral, limits 1 / 512Mi / 256Mi
   * @see https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/
   */
  readonly collectorResources?: ContainerResources;
  /**
   * OpenObserve image.
   * @default 'public.ecr.aws/zinclabs/openobserve:v0.14.0'
   * @see https://kubernetes.io/docs/concepts/containers/images/
   */
  readonly openObserveImage?: string;
  /**
   * Secret with the OpenObserve root user (`ZO_ROOT_USER_EMAIL`/`ZO_ROOT_USER_PASSWORD`); the
   * collector authenticates with the same credentials.
   * @default 'openobserve-root' with keys `email` and `password`
   * @see https://kubernetes.io/docs/concepts/configuration/secret/
   */
  readonly rootCredentialsSecretName?: string;
  /**
   * OpenObserve organization the collector writes to.
   * @default 'default'
   * @see https://openobserve.ai/docs/
   */
  readonly organization?: string;
  /**
   * OpenObserve data volume, GiB.
   * @default 20
   * @see https://kubernetes.io/docs/concepts/storage/persistent-volumes/
   */
  readonly storageGiB?: number;
  /**
   * StorageClass of the OpenObserve volume.
   * @default - the cluster's default StorageClass
   * @see https://kubernetes.io/docs/concepts/storage/storage-classes/
   */
  readonly storageClassName?: string;
  /**
   * OpenObserve resources.
   * @default - requests 250m / 512Mi / 128Mi ephemeral, limits 2 / 2Gi / 1Gi
   * @see https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/
   */
  readonly openObserveResources?: ContainerResources;
  /**
   * Pods that send telemetry to the collector (OTLP gRPC 4317 and HTTP 4318).
   * @default - pods labelled app.kubernetes.io/part-of=smedrec-audit in the same namespace
   * @see https://kubernetes.io/docs/concepts/services-networking/network-policies/
   */
  readonly telemetrySources?: NetworkPeer[];
  /**
   * Extra peers allowed to reach the OpenObserve UI/API on 5080 (the collector always is).
   * @default - none
   * @see https://kubernetes.io/docs/concepts/services-networking/network-policies/
   */
  readonly openObserveClients?: NetworkPeer[];
}

/** Options of {@link ObservabilityStack.addPrometheusMonitoring}. */
export interface PrometheusMonitoringOptions {
  /**
   * Labels Prometheus uses to select ServiceMonitors, PodMonitors and rules
   * (`serviceMonitorSelector`, `ruleSelector`).
   * @default - none
   * @see https://prometheus-operator.dev/docs/developer/getting-started/
   */
  readonly selectorLabels?: { [key: string]: string };
  /**
   * Scrape interval.
   * @default '30s'
   * @see https://prometheus-operator.dev/docs/developer/getting-started/
   */
  readonly scrapeInterval?: string;
  /**
   * Labels of the dashboard ConfigMaps the Grafana sidecar loads (kube-prometheus-stack's sidecar
   * looks for `grafana_dashboard: "1"` by default; it must watch this namespace).
   * @default { grafana_dashboard: '1' }
   * @see https://kubernetes.io/docs/concepts/configuration/configmap/
   */
  readonly grafanaDashboardLabels?: { [key: string]: string };
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

const OPENOBSERVE_PORT = 5080;

const DEFAULT_COLLECTOR_RESOURCES: ContainerResources = {
  cpuRequest: '100m',
  cpuLimit: '1',
  memoryRequest: '256Mi',
  memoryLimit: '512Mi',
  ephemeralStorageRequest: '64Mi',
  ephemeralStorageLimit: '256Mi',
};

const DEFAULT_OPENOBSERVE_RESOURCES: ContainerResources = {
  cpuRequest: '250m',
  cpuLimit: '2',
  memoryRequest: '512Mi',
  memoryLimit: '2Gi',
  ephemeralStorageRequest: '128Mi',
  ephemeralStorageLimit: '1Gi',
};

/**
 * Alerting rules of the audit server. Every metric name used here must be one the server
 * exposes (`server/src/observability/metric-names.ts`); a test enforces it.
 */
export function auditServerAlertRules(namespace: string, serviceName: string): AlertRule[] {
  const sel = `namespace="${namespace}"`;
  return [
    {
      alert: 'AuditServerDown',
      expr: `sum by (namespace) (up{${sel}, service="${serviceName}"}) == 0 or absent(up{${sel}, service="${serviceName}"})`,
      forDuration: '2m',
      severity: 'critical',
      summary: 'No audit server api replica is being scraped successfully.',
    },
    {
      alert: 'AuditServerHighErrorRate',
      expr:
        `sum by (namespace) (rate(http_requests_total{${sel}, status=~"5.."}[5m]))` +
        ` / sum by (namespace) (rate(http_requests_total{${sel}}[5m])) > 0.05`,
      forDuration: '10m',
      severity: 'warning',
      summary: 'More than 5 % of HTTP requests fail with a 5xx status.',
    },
    {
      alert: 'AuditServerHighLatency',
      expr: `histogram_quantile(0.99, sum by (namespace, le) (rate(http_request_duration_seconds_bucket{${sel}}[5m]))) > 1`,
      forDuration: '10m',
      severity: 'warning',
      summary: 'p99 HTTP latency is above one second.',
    },
    {
      alert: 'AuditLedgerVerificationFailed',
      expr: `sum by (namespace) (increase(audit_ledger_verification_failures_total{${sel}}[15m])) > 0`,
      forDuration: '0m',
      severity: 'critical',
      summary: 'The ledger self-audit found a proof that does not verify: possible tampering.',
    },
    {
      alert: 'AuditLedgerVerificationStale',
      expr: `time() - max by (namespace) (audit_ledger_last_verification_success_timestamp_seconds{${sel}}) > 7200`,
      forDuration: '15m',
      severity: 'warning',
      summary: 'No successful ledger self-audit for two hours.',
    },
    {
      alert: 'AuditIngestRejectionsHigh',
      expr:
        `sum by (namespace) (rate(audit_events_rejected_total{${sel}}[10m]))` +
        ` / clamp_min(sum by (namespace) (rate(audit_events_ingested_total{${sel}}[10m])) + sum by (namespace) (rate(audit_events_rejected_total{${sel}}[10m])), 1e-9) > 0.1`,
      forDuration: '15m',
      severity: 'warning',
      summary: 'More than 10 % of submitted events are rejected: a producer is sending bad events.',
    },
    ...dataTierAlertRules(sel),
    ...ledgerOutboxAlertRules(sel),
    {
      alert: 'AuditServerMemoryHigh',
      expr: `max by (namespace, pod) (process_resident_memory_bytes{${sel}, service="${serviceName}"}) > 900 * 1024 * 1024`,
      forDuration: '15m',
      severity: 'warning',
      summary: 'An api replica uses more than 900 MiB resident memory (limit 1 GiB).',
    },
  ];
}

/**
 * Alerts about the ledger outbox (docs/jobs.md): events of workers without the signing key wait
 * there until a replica holding the key appends them; every replica reports the same table.
 */
function ledgerOutboxAlertRules(sel: string): AlertRule[] {
  return [
    {
      alert: 'AuditLedgerOutboxStalled',
      expr: `max by (namespace) (audit_ledger_outbox_oldest_age_seconds{${sel}}) > 300`,
      forDuration: '5m',
      severity: 'warning',
      summary: 'Worker events have waited more than 5 minutes in the ledger outbox: no replica holding the signing key is appending them.',
    },
    {
      alert: 'AuditLedgerOutboxSetAside',
      expr: `max by (namespace) (audit_ledger_outbox_set_aside{${sel}}) > 0`,
      forDuration: '0m',
      severity: 'warning',
      summary: 'A ledger outbox event was set aside (invalid or refused): it will not reach the log without an operator.',
    },
  ];
}

/** Alerts about the audit server's view of PostgreSQL and Redis (reachability, pool, query time). */
function dataTierAlertRules(sel: string): AlertRule[] {
  return [
    {
      alert: 'AuditDatabaseDown',
      expr: `max by (namespace) (audit_database_up{${sel}}) == 0`,
      forDuration: '2m',
      severity: 'critical',
      summary: 'The audit server cannot reach PostgreSQL: ingestion is failing.',
    },
    {
      alert: 'AuditRedisDown',
      expr: `max by (namespace) (audit_redis_up{${sel}}) == 0`,
      forDuration: '5m',
      severity: 'warning',
      summary: 'Redis is unreachable: rate limits are local and the cache is off (no data loss).',
    },
    {
      alert: 'AuditDatabasePoolSaturated',
      expr: `max by (namespace, pod) (audit_db_pool_waiting_clients{${sel}}) > 0`,
      forDuration: '5m',
      severity: 'warning',
      summary: 'Requests of a replica wait for a PostgreSQL connection: raise DATABASE_POOL_MAX or find the slow queries.',
    },
    {
      alert: 'AuditDatabaseSlowQueries',
      expr: `histogram_quantile(0.99, sum by (namespace, le) (rate(audit_db_query_duration_seconds_bucket{${sel}}[5m]))) > 0.5`,
      forDuration: '10m',
      severity: 'warning',
      summary: 'p99 PostgreSQL query duration is above 500 ms.',
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
    checkInteger('collectorReplicas', collectorReplicas, 1);
    const collectorImage = props.collectorImage ?? 'otel/opentelemetry-collector-contrib:0.116.1';
    const openObserveImage = props.openObserveImage ?? 'public.ecr.aws/zinclabs/openobserve:v0.14.0';
    checkImage('collectorImage', collectorImage);
    checkImage('openObserveImage', openObserveImage);
    const storageGiB = props.storageGiB ?? 20;
    checkInteger('storageGiB', storageGiB, 1);

    const ooName = 'openobserve';
    this.openObserveUrl = `http://${ooName}.${ns}.svc.cluster.local:${OPENOBSERVE_PORT}`;
    const ooSelector = selectorLabels('openobserve', ooName, 'telemetry-store');
    const ooLabels = recommendedLabels('openobserve', ooName, 'telemetry-store', PART_OF);

    const collector = new OtelCollector(this, 'Collector', {
      name: 'otel-collector',
      namespace: ns,
      image: collectorImage,
      replicas: collectorReplicas,
      resources: props.collectorResources ?? DEFAULT_COLLECTOR_RESOURCES,
      sources: props.telemetrySources ?? [{ podLabels: { 'app.kubernetes.io/part-of': PART_OF }, port: OTLP_HTTP_PORT }],
      exportEndpoint: `${this.openObserveUrl}/api/${organization}`,
      exportPeer: { podLabels: ooSelector, port: OPENOBSERVE_PORT },
      username: this.rootEmailSecret,
      password: this.rootPasswordSecret,
    });
    this.collector = collector.deployment;
    this.otlpHttpEndpoint = `http://otel-collector.${ns}.svc.cluster.local:${OTLP_HTTP_PORT}`;
    this.otlpPeer = { podLabels: collector.podLabels, namespace: ns, port: OTLP_HTTP_PORT };

    const openObserve = new StatefulService(this, 'OpenObserve', {
      name: ooName,
      namespace: ns,
      labels: ooLabels,
      selector: ooSelector,
      port: { name: 'http', port: OPENOBSERVE_PORT, targetPort: k8s.IntOrString.fromString('http'), protocol: 'TCP' },
      containers: [openObserveContainer(openObserveImage, this.rootEmailSecret, this.rootPasswordSecret, props.openObserveResources ?? DEFAULT_OPENOBSERVE_RESOURCES)],
      volumes: [emptyDirVolume('tmp', '512Mi')],
      storageGiB,
      storageClassName: props.storageClassName,
    });
    this.openObserve = openObserve.statefulSet;
    new PodNetworkPolicy(this, 'OpenObserveNetworkPolicy', {
      metadata: objectMeta(ooName, ns, ooLabels),
      podSelector: ooSelector,
      ingress: ingressFrom([{ podLabels: collector.podLabels, port: OPENOBSERVE_PORT }, ...(props.openObserveClients ?? [])], OPENOBSERVE_PORT),
      egress: [dnsEgressRule()],
    });
  }

  /**
   * Adds prometheus-operator objects for `server` to `scope`: a ServiceMonitor for the api
   * Service, a PodMonitor for the worker pods and a PrometheusRule with
   * {@link auditServerAlertRules}, and the Grafana dashboards as ConfigMaps for the Grafana
   * sidecar. Pass a separate chart as `scope` when the CRDs may be absent where the rest of the
   * stack is applied.
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
    // Built with the Grafana Foundation SDK (grafana-dashboards.ts); one ConfigMap per dashboard.
    new k8s.KubeConfigMap(scope, `${server.node.id}GrafanaDashboard`, {
      metadata: {
        name: `${server.name}-dashboard`,
        namespace: server.namespace,
        labels: { ...recommendedLabels('audit-server', server.name, 'monitoring', PART_OF), ...(options.grafanaDashboardLabels ?? { grafana_dashboard: '1' }) },
      },
      data: { 'smedrec-audit-overview.json': `${JSON.stringify(overviewDashboard(), null, 2)}\n` },
    });
  }
}

/** The OpenObserve container: data under /data (the claim), the root user from the Secret. */
function openObserveContainer(
  image: string,
  rootEmail: SecretKeyReference,
  rootPassword: SecretKeyReference,
  resources: ContainerResources,
): k8s.Container {
  return hardenedContainer({
    name: 'openobserve',
    image,
    ports: [{ name: 'http', containerPort: OPENOBSERVE_PORT, protocol: 'TCP' }],
    env: [
      { name: 'ZO_DATA_DIR', value: '/data' },
      { name: 'ZO_HTTP_PORT', value: String(OPENOBSERVE_PORT) },
      // No usage reporting from a healthcare deployment.
      { name: 'ZO_TELEMETRY', value: 'false' },
      secretEnv('ZO_ROOT_USER_EMAIL', rootEmail),
      secretEnv('ZO_ROOT_USER_PASSWORD', rootPassword),
    ],
    resources: toResourceRequirements(resources),
    volumeMounts: [
      { name: 'data', mountPath: '/data' },
      { name: 'tmp', mountPath: '/tmp' },
    ],
    startupProbe: { httpGet: { path: '/healthz', port: k8s.IntOrString.fromString('http') }, periodSeconds: 5, failureThreshold: 60 },
    livenessProbe: { tcpSocket: { port: k8s.IntOrString.fromString('http') }, periodSeconds: 10, timeoutSeconds: 3 },
    readinessProbe: { httpGet: { path: '/healthz', port: k8s.IntOrString.fromString('http') }, periodSeconds: 5, timeoutSeconds: 3 },
  });
}
