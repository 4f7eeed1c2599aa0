import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { DisruptionBudget } from './disruption-budget';
import { hardenedPodSpec, objectMeta, setSyncWave, SyncWaves } from './workload-defaults';

/** Props of {@link StatefulService}. */
export interface StatefulServiceProps {
  /** Name of the StatefulSet, its ClusterIP Service and its PDB; the headless Service is `<name>-headless`. */
  readonly name: string;
  /** Namespace of every object. */
  readonly namespace: string;
  /** Labels of every object, the pod template and the volume claim. */
  readonly labels: { [key: string]: string };
  /** Immutable selector labels (a subset of `labels`). */
  readonly selector: { [key: string]: string };
  /** The one port both Services expose, targeting a named container port. */
  readonly port: k8s.ServicePort;
  /** Containers of the pod. */
  readonly containers: k8s.Container[];
  /** Volumes of the pod besides the `data` claim. */
  readonly volumes: k8s.Volume[];
  /**
   * Annotations of the pod template (a config checksum rolls the pod when its ConfigMap changes).
   * @default - none
   */
  readonly podAnnotations?: { [key: string]: string };
  /**
   * Seconds between SIGTERM and SIGKILL.
   * @default - the Kubernetes default (30)
   */
  readonly terminationGracePeriodSeconds?: number;
  /**
   * Size of the `data` volume claimed by each pod, GiB.
   * @default - no volume claim (the pods keep no state across restarts)
   */
  readonly storageGiB?: number;
  /**
   * StorageClass of the `data` volume.
   * @default - the cluster's default StorageClass
   */
  readonly storageClassName?: string;
  /**
   * `podManagementPolicy` of the StatefulSet.
   * @default - the Kubernetes default (OrderedReady)
   */
  readonly podManagementPolicy?: string;
  /**
   * `updateStrategy` of the StatefulSet.
   * @default - the Kubernetes default (RollingUpdate)
   */
  readonly updateStrategy?: k8s.StatefulSetUpdateStrategy;
  /**
   * Pods of the StatefulSet.
   * @default 1
   */
  readonly replicas?: number;
  /**
   * Affinity of the pods (anti-affinity between replicas).
   * @default - none
   */
  readonly affinity?: k8s.Affinity;
  /**
   * The headless Service publishes pods before they are ready, so replicas can resolve each
   * other's stable names while they start (a replica group that must find its primary to become
   * ready).
   * @default false
   */
  readonly publishNotReadyAddresses?: boolean;
}

/**
 * A data store: a StatefulSet (one replica unless told otherwise) with a `data` volume claim per
 * pod that outlives it, a ClusterIP Service for clients, the headless Service that gives the pod its
 * stable DNS name, and a PodDisruptionBudget that declares the budget without blocking a node
 * drain. The owner adds the NetworkPolicy, since only it knows the clients. Used by
 * `RedisCache` (one node, or the data nodes and sentinels of a Sentinel group), `PgVectorDb` and
 * `ObservabilityStack` (OpenObserve). Internal to the library.
 *
 * @see https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/
 */
export class StatefulService extends Construct {
  /** The StatefulSet (id `Resource`). */
  public readonly statefulSet: k8s.KubeStatefulSet;
  /** The ClusterIP Service. */
  public readonly service: k8s.KubeService;

  constructor(scope: Construct, id: string, props: StatefulServiceProps) {
    super(scope, id);
    const meta = (name: string) => objectMeta(name, props.namespace, props.labels);
    const headlessName = `${props.name}-headless`;
    this.statefulSet = new k8s.KubeStatefulSet(this, 'Resource', {
      metadata: meta(props.name),
      spec: {
        replicas: props.replicas ?? 1,
        serviceName: headlessName,
        selector: { matchLabels: props.selector },
        podManagementPolicy: props.podManagementPolicy,
        updateStrategy: props.updateStrategy,
        // Deleting or scaling the StatefulSet keeps the data volumes.
        persistentVolumeClaimRetentionPolicy: props.storageGiB === undefined ? undefined : { whenDeleted: 'Retain', whenScaled: 'Retain' },
        template: {
          metadata: { labels: props.labels, annotations: props.podAnnotations },
          spec: hardenedPodSpec({
            terminationGracePeriodSeconds: props.terminationGracePeriodSeconds,
            containers: props.containers,
            volumes: props.volumes,
            affinity: props.affinity,
          }),
        },
        volumeClaimTemplates: props.storageGiB === undefined ? undefined : [dataClaim(props.labels, props.storageGiB, props.storageClassName)],
      },
    });
    this.service = new k8s.KubeService(this, 'Service', {
      metadata: meta(props.name),
      spec: { type: 'ClusterIP', selector: props.selector, ports: [props.port] },
    });
    const headless = new k8s.KubeService(this, 'HeadlessService', {
      metadata: meta(headlessName),
      spec: { clusterIp: 'None', selector: props.selector, ports: [props.port], ...(props.publishNotReadyAddresses ? { publishNotReadyAddresses: true } : {}) },
    });
    for (const o of [this.statefulSet, this.service, headless]) setSyncWave(o, SyncWaves.data);
    // One eviction at a time. For a single instance the budget allows the eviction, so a node
    // drain does not hang, but is declared so that disruption tooling and the pdb-per-workload
    // policy see it; for a group of three it keeps two (a quorum) up through a drain.
    new DisruptionBudget(this, 'DisruptionBudget', { metadata: meta(props.name), selector: props.selector, syncWave: SyncWaves.data });
  }
}

/** The `data` volume claim template: ReadWriteOnce, kept when the StatefulSet goes. */
function dataClaim(labels: { [key: string]: string }, storageGiB: number, storageClassName: string | undefined): k8s.KubePersistentVolumeClaimProps {
  return {
    metadata: { name: 'data', labels },
    spec: {
      accessModes: ['ReadWriteOnce'],
      ...(storageClassName ? { storageClassName } : {}),
      resources: { requests: { storage: k8s.Quantity.fromString(`${storageGiB}Gi`) } },
    },
  };
}
