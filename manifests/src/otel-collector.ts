import { Yaml } from 'cdk8s';
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import type { ContainerResources } from './container-resources';
import { DisruptionBudget } from './disruption-budget';
import type { NetworkPeer } from './network-peer';
import { PodNetworkPolicy } from './pod-network-policy';
import type { SecretKeyReference } from './secret-reference';
import { PART_OF } from './version';
import {
  contentHash,
  dnsEgressRule,
  egressTo,
  emptyDirVolume,
  hardenedContainer,
  hardenedPodSpec,
  ingressFrom,
  objectMeta,
  recommendedLabels,
  secretEnv,
  selectorLabels,
  setSyncWave,
  SyncWaves,
  toResourceRequirements,
} from './workload-defaults';

/** OTLP over gRPC. */
export const OTLP_GRPC_PORT = 4317;
/** OTLP over HTTP. */
export const OTLP_HTTP_PORT = 4318;
/** The collector's health_check extension. */
const HEALTH_PORT = 13133;

/** Props of {@link OtelCollector}. */
export interface OtelCollectorProps {
  /** Name of every object (the ConfigMap is `<name>-config`). */
  readonly name: string;
  /** Namespace of every object. */
  readonly namespace: string;
  /** Collector image (contrib distribution: health_check and basicauth extensions). */
  readonly image: string;
  /** Replicas. */
  readonly replicas: number;
  /** Container resources. */
  readonly resources: ContainerResources;
  /** Pods that send telemetry (OTLP gRPC and HTTP). */
  readonly sources: NetworkPeer[];
  /** OTLP/HTTP base URL of the OpenObserve organization, `<url>/api/<organization>`. */
  readonly exportEndpoint: string;
  /** OpenObserve pods (egress NetworkPolicy). */
  readonly exportPeer: NetworkPeer;
  /** User the exporter authenticates as. */
  readonly username: SecretKeyReference;
  /** Its password. */
  readonly password: SecretKeyReference;
}

/**
 * An OpenTelemetry Collector: OTLP gRPC and HTTP in, batched OTLP/HTTP out to OpenObserve, as a
 * Deployment with its configuration, a ClusterIP Service, a PDB and a NetworkPolicy. Internal to
 * the library (`ObservabilityStack`).
 *
 * @see https://opentelemetry.io/docs/collector/configuration/
 */
export class OtelCollector extends Construct {
  /** Selector labels of the collector pods. */
  public readonly podLabels: { [key: string]: string };
  /** The Deployment. */
  public readonly deployment: k8s.KubeDeployment;

  constructor(scope: Construct, id: string, props: OtelCollectorProps) {
    super(scope, id);
    this.podLabels = selectorLabels('opentelemetry-collector', props.name, 'telemetry');
    const meta = objectMeta(props.name, props.namespace, recommendedLabels('opentelemetry-collector', props.name, 'telemetry', PART_OF));
    const config = collectorConfig(props.exportEndpoint);
    const configMap = new k8s.KubeConfigMap(this, 'Config', { metadata: { ...meta, name: `${props.name}-config` }, data: { 'config.yaml': config } });
    setSyncWave(configMap, SyncWaves.config);
    this.deployment = new k8s.KubeDeployment(this, 'Resource', {
      metadata: meta,
      spec: {
        replicas: props.replicas,
        selector: { matchLabels: this.podLabels },
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: k8s.IntOrString.fromNumber(1), maxUnavailable: k8s.IntOrString.fromNumber(0) } },
        template: {
          metadata: { labels: meta.labels, annotations: { 'checksum/config': contentHash(config) } },
          spec: hardenedPodSpec({
            containers: [collectorContainer(props)],
            volumes: [{ name: 'config', configMap: { name: configMap.name } }, emptyDirVolume('tmp', '64Mi')],
            topologySpreadConstraints: [
              { maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: this.podLabels } },
            ],
          }),
        },
      },
    });
    const service = new k8s.KubeService(this, 'Service', {
      metadata: meta,
      spec: {
        type: 'ClusterIP',
        selector: this.podLabels,
        ports: [
          // appProtocol lets service meshes and gateways pick HTTP/2 for gRPC.
          { name: 'otlp-grpc', port: OTLP_GRPC_PORT, targetPort: k8s.IntOrString.fromString('otlp-grpc'), protocol: 'TCP', appProtocol: 'grpc' },
          { name: 'otlp-http', port: OTLP_HTTP_PORT, targetPort: k8s.IntOrString.fromString('otlp-http'), protocol: 'TCP', appProtocol: 'http' },
        ],
      },
    });
    for (const o of [this.deployment, service]) setSyncWave(o, SyncWaves.data);
    new DisruptionBudget(this, 'DisruptionBudget', { metadata: meta, selector: this.podLabels, syncWave: SyncWaves.data });
    new PodNetworkPolicy(this, 'NetworkPolicy', {
      metadata: meta,
      podSelector: this.podLabels,
      ingress: [...ingressFrom(props.sources, OTLP_GRPC_PORT), ...ingressFrom(props.sources, OTLP_HTTP_PORT)],
      egress: [dnsEgressRule(), egressTo(props.exportPeer)],
    });
  }
}

/** The collector's config.yaml. */
function collectorConfig(exportEndpoint: string): string {
  return Yaml.stringify({
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
        endpoint: exportEndpoint,
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
}

function collectorContainer(props: OtelCollectorProps): k8s.Container {
  return hardenedContainer({
    name: 'collector',
    image: props.image,
    args: ['--config=/conf/config.yaml'],
    ports: [
      { name: 'otlp-grpc', containerPort: OTLP_GRPC_PORT, protocol: 'TCP' },
      { name: 'otlp-http', containerPort: OTLP_HTTP_PORT, protocol: 'TCP' },
      { name: 'health', containerPort: HEALTH_PORT, protocol: 'TCP' },
    ],
    env: [secretEnv('OPENOBSERVE_USER', props.username), secretEnv('OPENOBSERVE_PASSWORD', props.password)],
    resources: toResourceRequirements(props.resources),
    volumeMounts: [
      { name: 'config', mountPath: '/conf', readOnly: true },
      { name: 'tmp', mountPath: '/tmp' },
    ],
    // Alive while the receiver socket accepts; ready when the health_check extension reports
    // the pipelines running.
    livenessProbe: { tcpSocket: { port: k8s.IntOrString.fromString('otlp-grpc') }, periodSeconds: 10, timeoutSeconds: 3 },
    readinessProbe: { httpGet: { path: '/', port: k8s.IntOrString.fromString('health') }, periodSeconds: 5, timeoutSeconds: 3 },
  });
}
