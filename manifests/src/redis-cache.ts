import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import type { ContainerResources } from './container-resources';
import type { NetworkPeer } from './network-peer';
import { PodNetworkPolicy } from './pod-network-policy';
import type { SecretKeyReference } from './secret-reference';
import { StatefulService } from './stateful-service';
import { PART_OF } from './version';
import {
  checkDnsLabel,
  checkImage,
  checkInteger,
  checkQuantity,
  contentHash,
  dnsEgressRule,
  emptyDirVolume,
  hardenedContainer,
  ingressFrom,
  objectMeta,
  recommendedLabels,
  secretEnv,
  selectorLabels,
  setSyncWave,
  SyncWaves,
  toResourceRequirements,
} from './workload-defaults';

/** Redis `maxmemory-policy` values. */
export enum RedisEvictionPolicy {
  /** Refuse writes when full: queues (BullMQ) must never lose jobs (docs/architecture.md §5). */
  NO_EVICTION = 'noeviction',
  /** Evict any key, least recently used first: for a pure cache. */
  ALLKEYS_LRU = 'allkeys-lru',
  /** Evict keys with a TTL, least recently used first. */
  VOLATILE_LRU = 'volatile-lru',
}

/** Props of {@link RedisCache}. */
export interface RedisCacheProps {
  /**
   * Base name of the objects; also the Service name.
   * @default 'redis'
   * @see https://kubernetes.io/docs/concepts/overview/working-with-objects/names/
   */
  readonly name?: string;
  /**
   * Namespace of the objects.
   * @default 'smedrec-audit'
   * @see https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/
   */
  readonly namespace?: string;
  /**
   * Redis image (pinned).
   * @default 'redis:7.2.7-alpine'
   * @see https://kubernetes.io/docs/concepts/containers/images/
   */
  readonly image?: string;
  /**
   * Secret key holding the password (`requirepass`).
   * @default - key `password` of Secret `redis-credentials`
   * @see https://kubernetes.io/docs/concepts/configuration/secret/
   */
  readonly passwordSecret?: SecretKeyReference;
  /**
   * `maxmemory` in MiB. The container memory limit must leave room above it for the
   * copy-on-write pages of AOF rewrites.
   * @default 512
   * @see https://redis.io/docs/latest/develop/reference/eviction/
   */
  readonly maxMemoryMiB?: number;
  /**
   * `maxmemory-policy`.
   * @default RedisEvictionPolicy.NO_EVICTION
   * @see https://redis.io/docs/latest/develop/reference/eviction/
   */
  readonly evictionPolicy?: RedisEvictionPolicy;
  /**
   * Size of the data volume claimed per replica, GiB.
   * @default 8
   * @see https://kubernetes.io/docs/concepts/storage/persistent-volumes/
   */
  readonly storageGiB?: number;
  /**
   * StorageClass of the data volume.
   * @default - the cluster's default StorageClass
   * @see https://kubernetes.io/docs/concepts/storage/storage-classes/
   */
  readonly storageClassName?: string;
  /**
   * Redis container resources.
   * @default - requests 100m / maxMemory+128Mi, limits 1 / 1.5 × maxMemory, ephemeral 64Mi/256Mi
   * @see https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/
   */
  readonly resources?: ContainerResources;
  /**
   * Pods allowed to connect on 6379.
   * @default - pods labelled app.kubernetes.io/name=audit-server in the same namespace
   * @see https://kubernetes.io/docs/concepts/services-networking/network-policies/
   */
  readonly clients?: NetworkPeer[];
  /**
   * Add a redis_exporter sidecar serving Prometheus metrics on port 9121.
   * @default false
   * @see https://github.com/oliver006/redis_exporter
   */
  readonly exporterEnabled?: boolean;
  /**
   * Exporter image (pinned).
   * @default 'oliver006/redis_exporter:v1.67.0'
   * @see https://kubernetes.io/docs/concepts/containers/images/
   */
  readonly exporterImage?: string;
  /**
   * Scraper allowed to reach the exporter.
   * @default - any pod in namespace `monitoring`
   * @see https://kubernetes.io/docs/concepts/services-networking/network-policies/
   */
  readonly metricsScraper?: NetworkPeer;
}

/** Port Redis listens on. */
export const REDIS_PORT = 6379;

/**
 * A single Redis with persistent AOF storage, password from a Secret, a `redis.conf` from a
 * ConfigMap, probes, PDB and NetworkPolicy. It exposes `host`, `port` and `passwordSecret` so the
 * operator can build `REDIS_URL` for the audit server.
 */
export class RedisCache extends Construct {
  /** Port Redis listens on. */
  public static readonly PORT = REDIS_PORT;

  /** Base name (and Service name). */
  public readonly name: string;
  /** Namespace. */
  public readonly namespace: string;
  /** In-cluster host name. */
  public readonly host: string;
  /** Port. */
  public readonly port = REDIS_PORT;
  /** Where the password is read from. */
  public readonly passwordSecret: SecretKeyReference;
  /** Selector labels of the Redis pods. */
  public readonly podLabels: { [key: string]: string };
  /** NetworkPolicy peer for clients (`AuditServerProps.redis`). */
  public readonly peer: NetworkPeer;
  /** Effective `maxmemory` in MiB. */
  public readonly maxMemoryMiB: number;
  /** The StatefulSet. */
  public readonly statefulSet: k8s.KubeStatefulSet;

  constructor(scope: Construct, id: string, props: RedisCacheProps = {}) {
    super(scope, id);
    this.name = props.name ?? 'redis';
    this.namespace = props.namespace ?? 'smedrec-audit';
    checkDnsLabel('namespace', this.namespace);
    checkDnsLabel('name', this.name);
    this.passwordSecret = props.passwordSecret ?? { secretName: 'redis-credentials', key: 'password' };
    this.maxMemoryMiB = props.maxMemoryMiB ?? 512;
    const image = props.image ?? 'redis:7.2.7-alpine';
    checkImage('image', image);
    const storageGiB = props.storageGiB ?? 8;
    checkInteger('maxMemoryMiB', this.maxMemoryMiB, 16);
    checkInteger('storageGiB', storageGiB, 1);
    const resources = props.resources ?? defaultResources(this.maxMemoryMiB);
    for (const [k, v] of Object.entries(resources)) checkQuantity(`resources.${k}`, v as string);

    const ns = this.namespace;
    this.host = `${this.name}.${ns}.svc.cluster.local`;
    this.podLabels = selectorLabels('redis', this.name, 'cache');
    this.peer = { podLabels: this.podLabels, namespace: ns, port: REDIS_PORT };
    const labels = recommendedLabels('redis', this.name, 'cache', PART_OF);

    const conf = redisConf(this.maxMemoryMiB, props.evictionPolicy ?? RedisEvictionPolicy.NO_EVICTION);
    const configMap = new k8s.KubeConfigMap(this, 'Config', { metadata: objectMeta(`${this.name}-config`, ns, labels), data: { 'redis.conf': conf } });
    setSyncWave(configMap, SyncWaves.config);

    const containers = [redisContainer(image, this.passwordSecret, resources)];
    const exporterEnabled = props.exporterEnabled ?? false;
    if (exporterEnabled) {
      const exporterImage = props.exporterImage ?? 'oliver006/redis_exporter:v1.67.0';
      checkImage('exporterImage', exporterImage);
      containers.push(exporterContainer(exporterImage, this.passwordSecret));
    }
    const store = new StatefulService(this, 'Resource', {
      name: this.name,
      namespace: ns,
      labels,
      selector: this.podLabels,
      port: { name: 'redis', port: REDIS_PORT, targetPort: k8s.IntOrString.fromString('redis'), protocol: 'TCP' },
      podManagementPolicy: 'OrderedReady',
      updateStrategy: { type: 'RollingUpdate' },
      podAnnotations: {
        // Restart the pod when redis.conf changes (the ConfigMap is read only at start).
        'checksum/config': contentHash(conf),
        ...(exporterEnabled ? { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9121', 'prometheus.io/path': '/metrics' } : {}),
      },
      terminationGracePeriodSeconds: 30,
      containers,
      volumes: [{ name: 'config', configMap: { name: configMap.name } }, emptyDirVolume('run', '1Mi', 'Memory'), emptyDirVolume('tmp', '64Mi')],
      storageGiB,
      storageClassName: props.storageClassName,
    });
    this.statefulSet = store.statefulSet;

    const clients = props.clients ?? [{ podLabels: { 'app.kubernetes.io/name': 'audit-server' }, port: REDIS_PORT }];
    new PodNetworkPolicy(this, 'NetworkPolicy', {
      metadata: objectMeta(this.name, ns, labels),
      podSelector: this.podLabels,
      ingress: [
        ...ingressFrom(clients, REDIS_PORT),
        ...(exporterEnabled ? ingressFrom([props.metricsScraper ?? { namespace: 'monitoring', port: 9121 }], 9121) : []),
      ],
      // Redis initiates no connections (no replication); DNS only.
      egress: [dnsEgressRule()],
    });
  }
}

/**
 * Resources for `maxmemory`: the request covers the data set plus overhead, the limit leaves
 * room above it for the copy-on-write pages of an AOF rewrite.
 */
function defaultResources(maxMemoryMiB: number): ContainerResources {
  return {
    cpuRequest: '100m',
    cpuLimit: '1',
    memoryRequest: `${maxMemoryMiB + 128}Mi`,
    memoryLimit: `${Math.ceil(maxMemoryMiB * 1.5)}Mi`,
    ephemeralStorageRequest: '64Mi',
    ephemeralStorageLimit: '256Mi',
  };
}

/** redis.conf (directives: https://raw.githubusercontent.com/redis/redis/7.2/redis.conf). */
function redisConf(maxMemoryMiB: number, evictionPolicy: RedisEvictionPolicy): string {
  return [
    'port 6379',
    'bind 0.0.0.0 -::*',
    // With a password set, protected mode still allows remote clients that authenticate.
    'protected-mode yes',
    'dir /data',
    `maxmemory ${maxMemoryMiB}mb`,
    `maxmemory-policy ${evictionPolicy}`,
    // AOF fsync once a second: at most one second of writes lost on a crash.
    'appendonly yes',
    'appendfsync everysec',
    'save 900 1',
    'save 300 10',
    'save 60 10000',
    'tcp-keepalive 60',
    'timeout 0',
    // The password lives in a file written from the Secret at start, never in this ConfigMap.
    'include /run/redis/auth.conf',
    '',
  ].join('\n');
}

/**
 * The Redis container. Its start script writes `requirepass "<password>"` with `\` and `"`
 * escaped (redis.conf string syntax) into a 0600 file on a memory-backed emptyDir, then replaces
 * the shell with redis-server.
 */
function redisContainer(image: string, password: SecretKeyReference, resources: ContainerResources): k8s.Container {
  const startScript = [
    'set -eu',
    'umask 077',
    'escaped=$(printf \'%s\' "$REDIS_PASSWORD" | sed \'s/[\\\\"]/\\\\&/g\')',
    'printf \'requirepass "%s"\\n\' "$escaped" > /run/redis/auth.conf',
    'exec redis-server /etc/redis/redis.conf',
  ].join('\n');
  // Alive while loading the AOF (LOADING); ready only when it answers PONG.
  const alive = ['sh', '-c', 'redis-cli -h 127.0.0.1 ping | grep -Eq "PONG|LOADING"'];
  return hardenedContainer({
    name: 'redis',
    image,
    command: ['sh', '-c', startScript],
    ports: [{ name: 'redis', containerPort: REDIS_PORT, protocol: 'TCP' }],
    env: [
      secretEnv('REDIS_PASSWORD', password),
      // redis-cli reads the password from REDISCLI_AUTH, keeping it off the probe's argv.
      secretEnv('REDISCLI_AUTH', password),
    ],
    resources: toResourceRequirements(resources),
    volumeMounts: [
      { name: 'data', mountPath: '/data' },
      { name: 'config', mountPath: '/etc/redis', readOnly: true },
      { name: 'run', mountPath: '/run/redis' },
      { name: 'tmp', mountPath: '/tmp' },
    ],
    startupProbe: { exec: { command: alive }, periodSeconds: 5, failureThreshold: 60, timeoutSeconds: 3 },
    livenessProbe: { exec: { command: alive }, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 },
    readinessProbe: { exec: { command: ['sh', '-c', 'test "$(redis-cli -h 127.0.0.1 ping)" = PONG'] }, periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 3 },
  });
}

/** The redis_exporter sidecar: Prometheus metrics on port 9121. */
function exporterContainer(image: string, password: SecretKeyReference): k8s.Container {
  return hardenedContainer({
    name: 'exporter',
    image,
    ports: [{ name: 'metrics', containerPort: 9121, protocol: 'TCP' }],
    env: [{ name: 'REDIS_ADDR', value: 'redis://127.0.0.1:6379' }, secretEnv('REDIS_PASSWORD', password)],
    resources: toResourceRequirements({
      cpuRequest: '10m',
      cpuLimit: '200m',
      memoryRequest: '32Mi',
      memoryLimit: '64Mi',
      ephemeralStorageRequest: '8Mi',
      ephemeralStorageLimit: '32Mi',
    }),
    livenessProbe: { tcpSocket: { port: k8s.IntOrString.fromString('metrics') }, periodSeconds: 10, timeoutSeconds: 3 },
    readinessProbe: { httpGet: { path: '/health', port: k8s.IntOrString.fromString('metrics') }, periodSeconds: 10, timeoutSeconds: 3 },
  });
}
