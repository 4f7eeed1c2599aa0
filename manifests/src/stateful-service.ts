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
  /** Size of the `data` volume claimed by the pod, GiB. */
  readonly storageGiB: number;
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
}

/**
 * One instance of a data store: a StatefulSet of one replica with a `data` volume claim that
 * outlives it, a ClusterIP Service for clients, the headless Service that gives the pod its
 * stable DNS name, and a PodDisruptionBudget that declares the budget without blocking a node
 * drain. The owner adds the NetworkPolicy, since only it knows the clients. Used by
 * `RedisCache`, `PgVectorDb` and `ObservabilityStack` (OpenObserve). Internal to the library.
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
        replicas: 1,
        serviceName: headlessName,
        selector: { matchLabels: props.selector },
        podManagementPolicy: props.podManagementPolicy,
        updateStrategy: props.updateStrategy,
        // Deleting or scaling the StatefulSet keeps the data volume.
        persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Retain' },
        template: {
          metadata: { labels: props.labels, annotations: props.podAnnotations },
          spec: hardenedPodSpec({
            terminationGracePeriodSeconds: props.terminationGracePeriodSeconds,
            containers: props.containers,
            volumes: props.volumes,
          }),
        },
        volumeClaimTemplates: [
          {
            metadata: { name: 'data', labels: props.labels },
            spec: {
              accessModes: ['ReadWriteOnce'],
              ...(props.storageClassName ? { storageClassName: props.storageClassName } : {}),
              resources: { requests: { storage: k8s.Quantity.fromString(`${props.storageGiB}Gi`) } },
            },
          },
        ],
      },
    });
    this.service = new k8s.KubeService(this, 'Service', {
      metadata: meta(props.name),
      spec: { type: 'ClusterIP', selector: props.selector, ports: [props.port] },
    });
    const headless = new k8s.KubeService(this, 'HeadlessService', {
      metadata: meta(headlessName),
      spec: { clusterIp: 'None', selector: props.selector, ports: [props.port] },
    });
    for (const o of [this.statefulSet, this.service, headless]) setSyncWave(o, SyncWaves.data);
    // A single instance: the budget allows the eviction, so a node drain does not hang, but is
    // declared so that disruption tooling and the pdb-per-workload policy see it.
    new DisruptionBudget(this, 'DisruptionBudget', { metadata: meta(props.name), selector: props.selector, syncWave: SyncWaves.data });
  }
}
