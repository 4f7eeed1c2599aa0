// The Sentinel mode of RedisCache: three data nodes (one primary, two replicas) and three
// sentinels, each a StatefulSet with stable DNS names, required anti-affinity, a budget of one
// voluntary eviction and a NetworkPolicy naming every path. Failover belongs to Redis Sentinel;
// the start scripts (redis-config.ts) only find the current primary when a pod starts. Internal
// to the library.
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import type { ContainerResources } from './container-resources';
import type { NetworkPeer } from './network-peer';
import { PodNetworkPolicy } from './pod-network-policy';
import { localCli, REDIS_PATHS, REDIS_PORT, SENTINEL_PORT } from './redis-config';
import type { SecretKeyReference } from './secret-reference';
import { StatefulService } from './stateful-service';
import {
  dnsEgressRule,
  emptyDirVolume,
  hardenedContainer,
  ingressFrom,
  objectMeta,
  secretEnv,
  toPolicyPeer,
  toResourceRequirements,
} from './workload-defaults';

/** What the group shares with a standalone node (RedisCache resolves and checks it). */
export interface SentinelGroupParts {
  readonly image: string;
  readonly labels: { [key: string]: string };
  readonly resources: ContainerResources;
  readonly storageGiB: number;
  readonly storageClassName?: string;
  readonly configMapName: string;
  readonly podAnnotations: { [key: string]: string };
  /** The exporter sidecar of each data node, if any. */
  readonly exporter?: k8s.Container;
  readonly clients: NetworkPeer[];
  readonly metricsScraper?: NetworkPeer;
  readonly tlsSecretName?: string;
}

/** What the group is built from. */
export interface SentinelGroupSettings extends SentinelGroupParts {
  readonly name: string;
  readonly namespace: string;
  readonly sentinelLabels: { [key: string]: string };
  readonly dataSelector: { [key: string]: string };
  readonly sentinelSelector: { [key: string]: string };
  readonly masterName: string;
  readonly quorum: number;
  readonly password: SecretKeyReference;
  readonly sentinelPassword: SecretKeyReference;
  readonly topologyKey: string;
  readonly sentinelResources: ContainerResources;
}

/** Data nodes and sentinels per group. */
export const GROUP_SIZE = 3;

/** Stable DNS names of a StatefulSet's pods behind its headless Service. */
const podHosts = (sts: string, ns: string): string[] =>
  Array.from({ length: GROUP_SIZE }, (_, i) => `${sts}-${i}.${sts}-headless.${ns}.svc.cluster.local`);

/** The data nodes and sentinels of one Sentinel group. */
export class RedisSentinelGroup extends Construct {
  /** `host:port` of each sentinel (REDIS_SENTINELS). */
  public readonly sentinels: string[];
  /** The data nodes' StatefulSet. */
  public readonly statefulSet: k8s.KubeStatefulSet;
  /** The sentinels' StatefulSet. */
  public readonly sentinelStatefulSet: k8s.KubeStatefulSet;
  /** Selector labels of the sentinel pods. */
  public readonly sentinelSelector: { [key: string]: string };

  constructor(scope: Construct, id: string, s: SentinelGroupSettings) {
    super(scope, id);
    this.sentinelSelector = s.sentinelSelector;
    const sentinelName = `${s.name}-sentinel`;
    const dataHosts = podHosts(s.name, s.namespace);
    const sentinelHosts = podHosts(sentinelName, s.namespace);
    this.sentinels = sentinelHosts.map((h) => `${h}:${SENTINEL_PORT}`);
    const tls = s.tlsSecretName !== undefined;
    const env = (announceOf: string, announceVariable: string): k8s.EnvVar[] => [
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      // $(POD_NAME) is expanded by the kubelet: each pod announces its own stable name.
      { name: announceVariable, value: `$(POD_NAME).${announceOf}-headless.${s.namespace}.svc.cluster.local` },
      { name: 'REDIS_BOOTSTRAP_PRIMARY', value: dataHosts[0]! },
      { name: 'REDIS_SENTINEL_HOSTS', value: sentinelHosts.join(' ') },
      { name: 'REDIS_MASTER_NAME', value: s.masterName },
      secretEnv('REDIS_PASSWORD', s.password),
      secretEnv('REDIS_SENTINEL_PASSWORD', s.sentinelPassword),
    ];
    const volumes = (runSize: string): k8s.Volume[] => [
      { name: 'config', configMap: { name: s.configMapName } },
      emptyDirVolume('run', runSize, 'Memory'),
      emptyDirVolume('tmp', '64Mi'),
      ...(tls ? [{ name: 'tls', secret: { secretName: s.tlsSecretName, defaultMode: 0o440 } }] : []),
    ];
    const antiAffinity = (selector: { [key: string]: string }): k8s.Affinity => ({
      // Never two members of the group on one node (or zone, per topologyKey): losing it loses one.
      podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: { matchLabels: { ...selector } }, topologyKey: s.topologyKey }] },
    });

    this.statefulSet = new StatefulService(this, 'Data', {
      name: s.name,
      namespace: s.namespace,
      labels: s.labels,
      selector: s.dataSelector,
      port: { name: 'redis', port: REDIS_PORT, targetPort: k8s.IntOrString.fromString('redis'), protocol: 'TCP' },
      replicas: GROUP_SIZE,
      // Pod 0 first: on the group's first start it is the primary the others replicate.
      podManagementPolicy: 'OrderedReady',
      updateStrategy: { type: 'RollingUpdate' },
      podAnnotations: s.podAnnotations,
      terminationGracePeriodSeconds: 30,
      containers: [dataContainer(s, env(s.name, 'REDIS_ANNOUNCE_HOST'), tls), ...(s.exporter ? [s.exporter] : [])],
      volumes: volumes('1Mi'),
      storageGiB: s.storageGiB,
      storageClassName: s.storageClassName,
      affinity: antiAffinity(s.dataSelector),
      publishNotReadyAddresses: true,
    }).statefulSet;
    this.sentinelStatefulSet = new StatefulService(this, 'Sentinel', {
      name: sentinelName,
      namespace: s.namespace,
      labels: s.sentinelLabels,
      selector: s.sentinelSelector,
      port: { name: 'sentinel', port: SENTINEL_PORT, targetPort: k8s.IntOrString.fromString('sentinel'), protocol: 'TCP' },
      replicas: GROUP_SIZE,
      // A sentinel is ready once it knows the primary; all three start together.
      podManagementPolicy: 'Parallel',
      updateStrategy: { type: 'RollingUpdate' },
      podAnnotations: { 'checksum/config': s.podAnnotations['checksum/config']! },
      terminationGracePeriodSeconds: 10,
      containers: [sentinelContainer(s, env(sentinelName, 'SENTINEL_ANNOUNCE_HOST'), tls)],
      // The sentinel's own state (the rewritten sentinel.conf) is rebuilt from its peers at start.
      volumes: volumes('1Mi'),
      affinity: antiAffinity(s.sentinelSelector),
      publishNotReadyAddresses: true,
    }).statefulSet;
    this.addNetworkPolicies(s);
  }

  /** Every path of the group: clients, replication, sentinels to nodes and to each other, the start scripts' look-ups. */
  private addNetworkPolicies(s: SentinelGroupSettings): void {
    const data: NetworkPeer = { podLabels: s.dataSelector, port: REDIS_PORT };
    const sentinels: NetworkPeer = { podLabels: s.sentinelSelector, port: SENTINEL_PORT };
    const egress = (peer: NetworkPeer): k8s.NetworkPolicyEgressRule => ({ to: [toPolicyPeer(peer)], ports: [{ protocol: 'TCP', port: k8s.IntOrString.fromNumber(peer.port) }] });
    new PodNetworkPolicy(this, 'NetworkPolicy', {
      metadata: objectMeta(s.name, s.namespace, s.labels),
      podSelector: s.dataSelector,
      ingress: [
        ...ingressFrom([...s.clients, data, sentinels], REDIS_PORT),
        ...(s.exporter ? ingressFrom([s.metricsScraper ?? { namespace: 'monitoring', port: 9121 }], 9121) : []),
      ],
      // Replicas connect to the primary; the start script asks the sentinels who that is.
      egress: [dnsEgressRule(), egress(data), egress(sentinels)],
    });
    new PodNetworkPolicy(this, 'SentinelNetworkPolicy', {
      metadata: objectMeta(`${s.name}-sentinel`, s.namespace, s.sentinelLabels),
      podSelector: s.sentinelSelector,
      ingress: ingressFrom([...s.clients, data, sentinels], SENTINEL_PORT),
      egress: [dnsEgressRule(), egress(data), egress(sentinels)],
    });
  }
}

/** A data node: the start script from the ConfigMap, probes that know replicas from primaries. */
function dataContainer(s: SentinelGroupSettings, env: k8s.EnvVar[], tls: boolean): k8s.Container {
  const cli = localCli(REDIS_PORT, tls);
  // Alive while loading the AOF (LOADING); ready as the primary, or as a replica whose link to
  // the primary is up (a replica still syncing would serve stale or no data).
  const alive = ['sh', '-c', `${cli} ping | grep -Eq "PONG|LOADING"`];
  const ready = ['sh', '-c', `${cli} info replication | grep -Eq "^(role:master|master_link_status:up)"`];
  return hardenedContainer({
    name: 'redis',
    image: s.image,
    command: ['sh', `${REDIS_PATHS.config}/start-redis.sh`],
    ports: [{ name: 'redis', containerPort: REDIS_PORT, protocol: 'TCP' }],
    // redis-cli reads the password from REDISCLI_AUTH, keeping it off the probes' argv.
    env: [...env, secretEnv('REDISCLI_AUTH', s.password)],
    resources: toResourceRequirements(s.resources),
    volumeMounts: mounts(tls, true),
    startupProbe: { exec: { command: alive }, periodSeconds: 5, failureThreshold: 60, timeoutSeconds: 3 },
    livenessProbe: { exec: { command: alive }, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 },
    readinessProbe: { exec: { command: ready }, periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 3 },
  });
}

/** A sentinel: alive when it answers, ready when it names a primary. */
function sentinelContainer(s: SentinelGroupSettings, env: k8s.EnvVar[], tls: boolean): k8s.Container {
  const cli = localCli(SENTINEL_PORT, tls);
  return hardenedContainer({
    name: 'sentinel',
    image: s.image,
    command: ['sh', `${REDIS_PATHS.config}/start-sentinel.sh`],
    ports: [{ name: 'sentinel', containerPort: SENTINEL_PORT, protocol: 'TCP' }],
    env: [...env, secretEnv('REDISCLI_AUTH', s.sentinelPassword)],
    resources: toResourceRequirements(s.sentinelResources),
    volumeMounts: mounts(tls, false),
    livenessProbe: { exec: { command: ['sh', '-c', `${cli} ping | grep -q PONG`] }, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 },
    readinessProbe: {
      exec: { command: ['sh', '-c', `${cli} --raw sentinel get-master-addr-by-name "$REDIS_MASTER_NAME" | grep -q .`] },
      periodSeconds: 5,
      timeoutSeconds: 3,
      failureThreshold: 3,
    },
  });
}

function mounts(tls: boolean, data: boolean): k8s.VolumeMount[] {
  return [
    ...(data ? [{ name: 'data', mountPath: REDIS_PATHS.data }] : []),
    { name: 'config', mountPath: REDIS_PATHS.config, readOnly: true },
    { name: 'run', mountPath: REDIS_PATHS.run },
    { name: 'tmp', mountPath: '/tmp' },
    ...(tls ? [{ name: 'tls', mountPath: REDIS_PATHS.tls, readOnly: true }] : []),
  ];
}
