import { k8s } from 'cdk8s-plus-28';
import type { Construct } from 'constructs';
import type { ContainerResources } from './container-resources';
import type { ServerPodOptions, ServerRole } from './server-pod';
import { serverContainerBase, serverVolumes } from './server-pod';
import { hardenedPodSpec, setSyncWave, SyncWaves } from './workload-defaults';

/** Port the server listens on (`PORT`, server/src/config.ts). */
export const AUDIT_SERVER_PORT = 3000;

/** Props of {@link ServerDeployment}. */
export interface ServerDeploymentProps {
  /** Name, namespace and labels of the Deployment; the labels go on the pods too. */
  readonly metadata: k8s.ObjectMeta;
  /** Immutable selector labels. */
  readonly selector: { [key: string]: string };
  /** Long-running role of the pods (the container is named after it). */
  readonly role: 'api' | 'worker';
  /** Image, configuration and secrets. */
  readonly pod: ServerPodOptions;
  /** Container resources. */
  readonly resources: ContainerResources;
  /**
   * Replicas.
   * @default - not set: an HPA owns the count
   */
  readonly replicas?: number;
  /** Seconds the preStop hook waits before SIGTERM reaches the process. */
  readonly preStopDelaySeconds: number;
  /** Seconds between the start of termination and SIGKILL. */
  readonly terminationGracePeriodSeconds: number;
  /**
   * Init containers (the migration, in `MigrationMode.INIT_CONTAINER`).
   * @default - none
   */
  readonly initContainers?: k8s.Container[];
}

/**
 * A Deployment of the audit server in one role (`api` or `worker`): rolling updates that never
 * drop below the current capacity, startup/liveness/readiness probes on `/health` and `/ready`,
 * a preStop delay so endpoints converge before SIGTERM, spread over zones and nodes, and
 * Prometheus scrape annotations. Built once for the api and once for the worker. Internal to the
 * library.
 *
 * @see https://kubernetes.io/docs/concepts/workloads/controllers/deployment/
 */
export class ServerDeployment extends k8s.KubeDeployment {
  constructor(scope: Construct, id: string, props: ServerDeploymentProps) {
    const selector = props.selector;
    super(scope, id, {
      metadata: props.metadata,
      spec: {
        replicas: props.replicas,
        revisionHistoryLimit: 5,
        selector: { matchLabels: selector },
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: k8s.IntOrString.fromNumber(1), maxUnavailable: k8s.IntOrString.fromNumber(0) } },
        template: {
          metadata: {
            labels: props.metadata.labels,
            annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(AUDIT_SERVER_PORT), 'prometheus.io/path': '/metrics' },
          },
          spec: hardenedPodSpec({
            serviceAccountName: props.pod.serviceAccountName,
            terminationGracePeriodSeconds: props.terminationGracePeriodSeconds,
            initContainers: props.initContainers,
            containers: [serverContainer(props)],
            // Each container mounts its own role's secrets; the init container is named after its role.
            volumes: serverVolumes(props.pod, [props.role, ...(props.initContainers ?? []).map((c) => c.name as ServerRole)]),
            // Spread over zones when the cluster has several (best effort) and never stack two
            // replicas on one node while another node has room.
            topologySpreadConstraints: [
              { maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: selector } },
              { maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'DoNotSchedule', labelSelector: { matchLabels: selector } },
            ],
          }),
        },
      },
    });
    setSyncWave(this, SyncWaves.app);
  }
}

/** The server container of a long-running role, with its port, probes and preStop hook. */
function serverContainer(props: ServerDeploymentProps): k8s.Container {
  const http = k8s.IntOrString.fromString('http');
  return {
    ...serverContainerBase(props.pod, props.role, props.resources),
    ports: [{ name: 'http', containerPort: AUDIT_SERVER_PORT, protocol: 'TCP' }],
    // The startup probe holds liveness off while the process boots and checks migrations;
    // 30 × 5 s gives a slow start 150 s before the kubelet restarts it.
    startupProbe: { httpGet: { path: '/health', port: http }, periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 30 },
    // Seed values: liveness 30/10/5/3, readiness 10/5/3/3 (initialDelay/period/timeout/failures).
    livenessProbe: { httpGet: { path: '/health', port: http }, initialDelaySeconds: 30, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 },
    readinessProbe: { httpGet: { path: '/ready', port: http }, initialDelaySeconds: 10, periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 3 },
    // Keep serving while endpoints and the ingress controller converge on the pod's removal;
    // SIGTERM only follows the hook. `sleep` exists in the alpine-based image.
    lifecycle: { preStop: { exec: { command: ['sleep', String(props.preStopDelaySeconds)] } } },
  };
}
