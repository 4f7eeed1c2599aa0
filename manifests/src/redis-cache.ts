import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import type { ContainerResources } from './container-resources';
import type { NetworkPeer } from './network-peer';
import { PodNetworkPolicy } from './pod-network-policy';
import { dataNodeStartScript, localCli, REDIS_PATHS, REDIS_PORT, redisConf, SENTINEL_PORT, sentinelConf, sentinelMasterConf, sentinelStartScript, standaloneStartScript } from './redis-config';
import { GROUP_SIZE, RedisSentinelGroup } from './redis-sentinel';
import type { SentinelGroupParts } from './redis-sentinel';
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

/** How Redis is deployed. */
export enum RedisMode {
  /** One node: development, or where losing Redis for a restart is acceptable. */
  STANDALONE = 'standalone',
  /**
   * One primary, two replicas and three sentinels (quorum 2) that promote a replica when the
   * primary fails; the server follows them (`REDIS_SENTINELS`, docs/operations.md "Redis Sentinel").
   */
  SENTINEL = 'sentinel',
}

/** Settings of the Sentinel mode. */
export interface RedisSentinelOptions {
  /**
   * Name the sentinels monitor the primary under (`REDIS_SENTINEL_MASTER` of the server).
   * @default 'audit'
   */
  readonly masterName?: string;
  /**
   * Sentinels that must agree the primary is down before a failover (of three).
   * @default 2
   */
  readonly quorum?: number;
  /**
   * Milliseconds without an answer before a sentinel considers a node down.
   * @default 5000
   */
  readonly downAfterMilliseconds?: number;
  /**
   * Milliseconds a failover may take before another sentinel may try again.
   * @default 60000
   */
  readonly failoverTimeoutMilliseconds?: number;
  /**
   * Secret key holding the sentinels' own password (`requirepass` of the sentinels; the
   * server's `REDIS_SENTINEL_PASSWORD`).
   * @default - key `sentinel-password` of Secret `redis-credentials`
   * @see https://kubernetes.io/docs/concepts/configuration/secret/
   */
  readonly passwordSecret?: SecretKeyReference;
  /**
   * Node label no two data nodes (and no two sentinels) may share (required anti-affinity).
   * @default 'kubernetes.io/hostname'
   * @see https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#inter-pod-affinity-and-anti-affinity
   */
  readonly topologyKey?: string;
  /**
   * Resources of each sentinel container.
   * @default - requests 20m / 32Mi / 16Mi ephemeral, limits 200m / 64Mi / 64Mi
   * @see https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/
   */
  readonly resources?: ContainerResources;
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
  /**
   * Standalone node or Sentinel group.
   * @default RedisMode.STANDALONE
   * @see https://redis.io/docs/latest/operate/oss_and_stack/management/sentinel/
   */
  readonly mode?: RedisMode;
  /**
   * Settings of the Sentinel mode.
   * @default - see {@link RedisSentinelOptions}
   */
  readonly sentinel?: RedisSentinelOptions;
  /**
   * Serve TLS only (data nodes, replication, sentinels), with the certificate, key and CA of a
   * `kubernetes.io/tls` Secret (`tls.crt`, `tls.key`, `ca.crt`, as cert-manager writes them). The
   * certificate must name the pods' DNS names and 127.0.0.1 (probes and the exporter connect
   * locally); the server then needs a `rediss:` REDIS_URL and a trusted CA.
   * @default - no TLS
   * @see https://kubernetes.io/docs/concepts/configuration/secret/#tls-secrets
   */
  readonly tlsSecretName?: string;
}

export { REDIS_PORT };

const DEFAULT_SENTINEL_RESOURCES: ContainerResources = {
  cpuRequest: '20m',
  cpuLimit: '200m',
  memoryRequest: '32Mi',
  memoryLimit: '64Mi',
  ephemeralStorageRequest: '16Mi',
  ephemeralStorageLimit: '64Mi',
};

/**
 * Redis with persistent AOF storage, password from a Secret, a `redis.conf` from a ConfigMap,
 * probes, PDBs and NetworkPolicies: a single node, or (`mode: RedisMode.SENTINEL`) a primary, two
 * replicas and three sentinels. It exposes `host`, `port` and `passwordSecret` so the operator can
 * build `REDIS_URL` for the audit server, and in Sentinel mode `sentinels`, `masterName`,
 * `sentinelPasswordSecret` and `sentinelPeer` for `AuditServerProps.redisSentinel`.
 */
export class RedisCache extends Construct {
  /** Port Redis listens on. */
  public static readonly PORT = REDIS_PORT;

  /** Base name (and Service name). */
  public readonly name: string;
  /** Namespace. */
  public readonly namespace: string;
  /** In-cluster host name (in Sentinel mode a Service over every data node: ask the sentinels for the primary). */
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
  /** The StatefulSet of the data node(s). */
  public readonly statefulSet: k8s.KubeStatefulSet;
  /** Effective mode. */
  public readonly mode: RedisMode;
  /** Nodes and sentinels speak TLS only. */
  public readonly tls: boolean;
  /** `host:port` of every sentinel (`REDIS_SENTINELS`), in Sentinel mode. */
  public readonly sentinels?: string[];
  /** Name the sentinels monitor the primary under, in Sentinel mode. */
  public readonly masterName?: string;
  /** Where the sentinels' password is read from, in Sentinel mode. */
  public readonly sentinelPasswordSecret?: SecretKeyReference;
  /** NetworkPolicy peer of the sentinels (port 26379), in Sentinel mode. */
  public readonly sentinelPeer?: NetworkPeer;
  /** The sentinels' StatefulSet, in Sentinel mode. */
  public readonly sentinelStatefulSet?: k8s.KubeStatefulSet;

  constructor(scope: Construct, id: string, props: RedisCacheProps = {}) {
    super(scope, id);
    this.name = props.name ?? 'redis';
    this.namespace = props.namespace ?? 'smedrec-audit';
    checkDnsLabel('namespace', this.namespace);
    checkDnsLabel('name', this.name);
    this.passwordSecret = props.passwordSecret ?? { secretName: 'redis-credentials', key: 'password' };
    this.maxMemoryMiB = props.maxMemoryMiB ?? 512;
    this.mode = props.mode ?? RedisMode.STANDALONE;
    this.tls = props.tlsSecretName !== undefined;
    if (props.tlsSecretName !== undefined) checkDnsLabel('tlsSecretName', props.tlsSecretName);
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

    const sentinel = this.mode === RedisMode.SENTINEL ? checkedSentinel(props.sentinel ?? {}) : undefined;
    const data = configData(this.maxMemoryMiB, props.evictionPolicy ?? RedisEvictionPolicy.NO_EVICTION, this.tls, sentinel);
    const configMap = new k8s.KubeConfigMap(this, 'Config', { metadata: objectMeta(`${this.name}-config`, ns, labels), data });
    setSyncWave(configMap, SyncWaves.config);

    const exporterEnabled = props.exporterEnabled ?? false;
    const exporterImage = props.exporterImage ?? 'oliver006/redis_exporter:v1.67.0';
    if (exporterEnabled) checkImage('exporterImage', exporterImage);
    const exporter = exporterEnabled ? exporterContainer(exporterImage, this.passwordSecret, this.tls) : undefined;
    const podAnnotations = {
      // Restart the pods when the configuration changes (the ConfigMap is read only at start).
      'checksum/config': contentHash(Object.values(data).join('\n')),
      ...(exporterEnabled ? { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9121', 'prometheus.io/path': '/metrics' } : {}),
    };
    const clients = props.clients ?? [{ podLabels: { 'app.kubernetes.io/name': 'audit-server' }, port: REDIS_PORT }];

    if (sentinel) {
      const group = this.addSentinelGroup(sentinel, {
        image,
        labels,
        resources,
        storageGiB,
        storageClassName: props.storageClassName,
        configMapName: configMap.name,
        podAnnotations,
        exporter,
        clients,
        metricsScraper: props.metricsScraper,
        tlsSecretName: props.tlsSecretName,
      });
      this.statefulSet = group.statefulSet;
      this.sentinelStatefulSet = group.sentinelStatefulSet;
      this.sentinels = group.sentinels;
      this.masterName = sentinel.masterName;
      this.sentinelPasswordSecret = sentinel.passwordSecret;
      this.sentinelPeer = { podLabels: group.sentinelSelector, namespace: ns, port: SENTINEL_PORT };
    } else {
      this.statefulSet = this.addStandalone(image, resources, configMap.name, { labels, podAnnotations, storageGiB, storageClassName: props.storageClassName, exporter, tlsSecretName: props.tlsSecretName });
      new PodNetworkPolicy(this, 'NetworkPolicy', {
        metadata: objectMeta(this.name, ns, labels),
        podSelector: this.podLabels,
        ingress: [...ingressFrom(clients, REDIS_PORT), ...(exporter ? ingressFrom([props.metricsScraper ?? { namespace: 'monitoring', port: 9121 }], 9121) : [])],
        // Redis initiates no connections (no replication); DNS only.
        egress: [dnsEgressRule()],
      });
    }
  }

  /** The data nodes and sentinels of Sentinel mode. */
  private addSentinelGroup(sentinel: CheckedSentinel, o: SentinelGroupParts): RedisSentinelGroup {
    return new RedisSentinelGroup(this, 'Resource', {
      ...o,
      name: this.name,
      namespace: this.namespace,
      sentinelLabels: recommendedLabels('redis', `${this.name}-sentinel`, 'sentinel', PART_OF),
      dataSelector: this.podLabels,
      sentinelSelector: selectorLabels('redis', `${this.name}-sentinel`, 'sentinel'),
      masterName: sentinel.masterName,
      quorum: sentinel.quorum,
      password: this.passwordSecret,
      sentinelPassword: sentinel.passwordSecret,
      topologyKey: sentinel.topologyKey,
      sentinelResources: sentinel.resources,
    });
  }

  /** The single node's StatefulSet. */
  private addStandalone(image: string, resources: ContainerResources, configMapName: string, o: StandaloneParts): k8s.KubeStatefulSet {
    const tls = o.tlsSecretName !== undefined;
    return new StatefulService(this, 'Resource', {
      name: this.name,
      namespace: this.namespace,
      labels: o.labels,
      selector: this.podLabels,
      port: { name: 'redis', port: REDIS_PORT, targetPort: k8s.IntOrString.fromString('redis'), protocol: 'TCP' },
      podManagementPolicy: 'OrderedReady',
      updateStrategy: { type: 'RollingUpdate' },
      podAnnotations: o.podAnnotations,
      terminationGracePeriodSeconds: 30,
      containers: [redisContainer(image, this.passwordSecret, resources, tls), ...(o.exporter ? [o.exporter] : [])],
      volumes: [
        { name: 'config', configMap: { name: configMapName } },
        emptyDirVolume('run', '1Mi', 'Memory'),
        emptyDirVolume('tmp', '64Mi'),
        ...(tls ? [{ name: 'tls', secret: { secretName: o.tlsSecretName, defaultMode: 0o440 } }] : []),
      ],
      storageGiB: o.storageGiB,
      storageClassName: o.storageClassName,
    }).statefulSet;
  }
}

/** What the standalone StatefulSet shares with the constructor. */
interface StandaloneParts {
  readonly labels: { [key: string]: string };
  readonly podAnnotations: { [key: string]: string };
  readonly storageGiB: number;
  readonly storageClassName?: string;
  readonly exporter?: k8s.Container;
  readonly tlsSecretName?: string;
}

/** Sentinel options, defaulted and checked. */
interface CheckedSentinel {
  readonly masterName: string;
  readonly quorum: number;
  readonly downAfterMilliseconds: number;
  readonly failoverTimeoutMilliseconds: number;
  readonly passwordSecret: SecretKeyReference;
  readonly topologyKey: string;
  readonly resources: ContainerResources;
}

function checkedSentinel(o: RedisSentinelOptions): CheckedSentinel {
  const s: CheckedSentinel = {
    masterName: o.masterName ?? 'audit',
    quorum: o.quorum ?? 2,
    downAfterMilliseconds: o.downAfterMilliseconds ?? 5000,
    failoverTimeoutMilliseconds: o.failoverTimeoutMilliseconds ?? 60_000,
    passwordSecret: o.passwordSecret ?? { secretName: 'redis-credentials', key: 'sentinel-password' },
    topologyKey: o.topologyKey ?? 'kubernetes.io/hostname',
    resources: o.resources ?? DEFAULT_SENTINEL_RESOURCES,
  };
  // The name is a word of sentinel.conf and of the server's REDIS_SENTINEL_MASTER.
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(s.masterName)) throw new Error(`invalid sentinel.masterName: '${s.masterName}' (expected letters, digits, _ . -)`);
  checkInteger('sentinel.quorum', s.quorum, 1);
  if (s.quorum > GROUP_SIZE) throw new Error(`invalid sentinel.quorum: ${s.quorum} (expected at most ${GROUP_SIZE}, the number of sentinels)`);
  checkInteger('sentinel.downAfterMilliseconds', s.downAfterMilliseconds, 100);
  checkInteger('sentinel.failoverTimeoutMilliseconds', s.failoverTimeoutMilliseconds, 1000);
  for (const [k, v] of Object.entries(s.resources)) checkQuantity(`sentinel.resources.${k}`, v as string);
  return s;
}

/** The ConfigMap: redis.conf, and in Sentinel mode sentinel.conf and both start scripts. */
function configData(maxMemoryMiB: number, evictionPolicy: RedisEvictionPolicy, tls: boolean, sentinel: CheckedSentinel | undefined): Record<string, string> {
  const conf = redisConf({ maxMemoryMiB, evictionPolicy, tls, replicated: sentinel !== undefined });
  if (!sentinel) return { 'redis.conf': conf };
  const options = { ...sentinel, tls };
  return {
    'redis.conf': conf,
    'sentinel.conf': sentinelConf(options),
    'sentinel-master.conf': sentinelMasterConf(options),
    'start-redis.sh': dataNodeStartScript(tls),
    'start-sentinel.sh': sentinelStartScript(sentinel.masterName, sentinel.quorum, tls),
  };
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

/**
 * The standalone Redis container. Its start script writes `requirepass "<password>"` with `\` and
 * `"` escaped (redis.conf string syntax) into a 0600 file on a memory-backed emptyDir, then
 * replaces the shell with redis-server.
 */
function redisContainer(image: string, password: SecretKeyReference, resources: ContainerResources, tls: boolean): k8s.Container {
  const cli = localCli(REDIS_PORT, tls);
  // Alive while loading the AOF (LOADING); ready only when it answers PONG.
  const alive = ['sh', '-c', `${cli} ping | grep -Eq "PONG|LOADING"`];
  return hardenedContainer({
    name: 'redis',
    image,
    command: ['sh', '-c', standaloneStartScript()],
    ports: [{ name: 'redis', containerPort: REDIS_PORT, protocol: 'TCP' }],
    env: [
      secretEnv('REDIS_PASSWORD', password),
      // redis-cli reads the password from REDISCLI_AUTH, keeping it off the probe's argv.
      secretEnv('REDISCLI_AUTH', password),
    ],
    resources: toResourceRequirements(resources),
    volumeMounts: [
      { name: 'data', mountPath: REDIS_PATHS.data },
      { name: 'config', mountPath: REDIS_PATHS.config, readOnly: true },
      { name: 'run', mountPath: REDIS_PATHS.run },
      { name: 'tmp', mountPath: '/tmp' },
      ...(tls ? [{ name: 'tls', mountPath: REDIS_PATHS.tls, readOnly: true }] : []),
    ],
    startupProbe: { exec: { command: alive }, periodSeconds: 5, failureThreshold: 60, timeoutSeconds: 3 },
    livenessProbe: { exec: { command: alive }, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 },
    readinessProbe: { exec: { command: ['sh', '-c', `test "$(${cli} ping)" = PONG`] }, periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 3 },
  });
}

/** The redis_exporter sidecar: Prometheus metrics on port 9121 (over TLS to Redis when it speaks only TLS). */
function exporterContainer(image: string, password: SecretKeyReference, tls: boolean): k8s.Container {
  return hardenedContainer({
    name: 'exporter',
    image,
    ports: [{ name: 'metrics', containerPort: 9121, protocol: 'TCP' }],
    env: [
      { name: 'REDIS_ADDR', value: `${tls ? 'rediss' : 'redis'}://127.0.0.1:${REDIS_PORT}` },
      secretEnv('REDIS_PASSWORD', password),
      ...(tls ? [{ name: 'REDIS_EXPORTER_TLS_CA_CERT_FILE', value: `${REDIS_PATHS.tls}/ca.crt` }] : []),
    ],
    ...(tls ? { volumeMounts: [{ name: 'tls', mountPath: REDIS_PATHS.tls, readOnly: true }] } : {}),
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
