import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { DisruptionBudget } from './disruption-budget';
import type { NetworkPeer } from './network-peer';
import { PodNetworkPolicy } from './pod-network-policy';
import type { SecretKeyReference } from './secret-reference';
import { PART_OF } from './version';
import {
  checkImage,
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

/** Port of Electric's HTTP API. */
const ELECTRIC_PORT = 3000;

/** Props of {@link ElectricSync}. */
export interface ElectricSyncProps {
  /** Name of every object (`<database>-electric`). */
  readonly name: string;
  /** Namespace of every object. */
  readonly namespace: string;
  /** ElectricSQL image (pinned). */
  readonly image: string;
  /** Connection string of a role with the REPLICATION attribute. */
  readonly databaseUrlSecret: SecretKeyReference;
  /** `ELECTRIC_SECRET` that clients must present. */
  readonly electricSecret: SecretKeyReference;
  /** Pods allowed to call the HTTP API. */
  readonly clients: NetworkPeer[];
  /** The database Electric replicates from. */
  readonly database: NetworkPeer;
}

/**
 * ElectricSQL in front of `PgVectorDb`: one replica (it owns a logical replication slot), a
 * ClusterIP Service, a PDB and a NetworkPolicy that admits `clients` and lets it reach the
 * database only. Internal to the library (`PgVectorDbProps.electricEnabled`).
 *
 * @see https://electric-sql.com/docs/guides/deployment
 */
export class ElectricSync extends Construct {
  /** Selector labels of the Electric pods. */
  public readonly podLabels: { [key: string]: string };

  constructor(scope: Construct, id: string, props: ElectricSyncProps) {
    super(scope, id);
    checkImage('electric.image', props.image);
    this.podLabels = selectorLabels('electric', props.name, 'sync');
    const meta = objectMeta(props.name, props.namespace, recommendedLabels('electric', props.name, 'sync', PART_OF));
    const deployment = new k8s.KubeDeployment(this, 'Resource', {
      metadata: meta,
      spec: {
        // One replica: Electric owns a logical replication slot.
        replicas: 1,
        strategy: { type: 'Recreate' },
        selector: { matchLabels: this.podLabels },
        template: {
          metadata: { labels: meta.labels },
          spec: hardenedPodSpec({
            containers: [electricContainer(props)],
            volumes: [emptyDirVolume('storage', '1536Mi'), emptyDirVolume('tmp', '256Mi')],
          }),
        },
      },
    });
    setSyncWave(deployment, SyncWaves.app);
    const service = new k8s.KubeService(this, 'Service', {
      metadata: meta,
      spec: {
        type: 'ClusterIP',
        selector: this.podLabels,
        ports: [{ name: 'http', port: ELECTRIC_PORT, targetPort: k8s.IntOrString.fromString('http'), protocol: 'TCP' }],
      },
    });
    setSyncWave(service, SyncWaves.app);
    new DisruptionBudget(this, 'DisruptionBudget', { metadata: meta, selector: this.podLabels, syncWave: SyncWaves.app });
    new PodNetworkPolicy(this, 'NetworkPolicy', {
      metadata: meta,
      podSelector: this.podLabels,
      ingress: ingressFrom(props.clients, ELECTRIC_PORT),
      egress: [dnsEgressRule(), egressTo(props.database)],
    });
  }
}

function electricContainer(props: ElectricSyncProps): k8s.Container {
  return hardenedContainer({
    name: 'electric',
    image: props.image,
    ports: [{ name: 'http', containerPort: ELECTRIC_PORT, protocol: 'TCP' }],
    env: [
      secretEnv('DATABASE_URL', props.databaseUrlSecret),
      secretEnv('ELECTRIC_SECRET', props.electricSecret),
      { name: 'ELECTRIC_STORAGE_DIR', value: '/var/lib/electric' },
    ],
    resources: toResourceRequirements({
      cpuRequest: '100m',
      cpuLimit: '1',
      memoryRequest: '256Mi',
      memoryLimit: '512Mi',
      ephemeralStorageRequest: '256Mi',
      ephemeralStorageLimit: '2Gi',
    }),
    volumeMounts: [
      { name: 'storage', mountPath: '/var/lib/electric' },
      { name: 'tmp', mountPath: '/tmp' },
    ],
    livenessProbe: { tcpSocket: { port: k8s.IntOrString.fromString('http') }, periodSeconds: 10, timeoutSeconds: 3 },
    readinessProbe: { httpGet: { path: '/v1/health', port: k8s.IntOrString.fromString('http') }, periodSeconds: 5, timeoutSeconds: 3 },
  });
}
