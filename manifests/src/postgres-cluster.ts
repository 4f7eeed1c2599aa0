import { ApiObject } from 'cdk8s';
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import type { ContainerResources } from './container-resources';
import type { NetworkPeer } from './network-peer';
import { PodNetworkPolicy } from './pod-network-policy';
import type { SecretKeyReference } from './secret-reference';
import { PART_OF } from './version';
import { checkDnsLabel, checkImage, checkInteger, dnsEgressRule, ingressFrom, objectMeta, recommendedLabels, setSyncWave, SyncWaves, toPolicyPeer } from './workload-defaults';

/** Props of {@link PostgresCluster}. */
export interface PostgresClusterProps {
  /**
   * Name of the CloudNativePG `Cluster`; the operator names its Services `<name>-rw` (primary),
   * `<name>-ro` (replicas) and `<name>-r` (any instance).
   * @default 'postgres'
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
   * PostgreSQL instances (one primary, the rest hot standbys), spread across zones.
   * @default 3
   * @see https://kubernetes.io/docs/concepts/workloads/pods/
   * @see https://cloudnative-pg.io/documentation/current/replication/
   */
  readonly replicas?: number;
  /**
   * Operand image: a CloudNativePG PostgreSQL image with pgvector (the `standard` images ship it).
   * @default 'ghcr.io/cloudnative-pg/postgresql:17.6-standard-bookworm'
   * @see https://kubernetes.io/docs/concepts/containers/images/
   */
  readonly image?: string;
  /**
   * Synchronous standbys a commit waits for (quorum `ANY n`); 0 for asynchronous replication.
   * With 1 or more, an acknowledged event survives the loss of the primary.
   * @default 1
   * @see https://kubernetes.io/docs/concepts/workloads/pods/
   * @see https://cloudnative-pg.io/documentation/current/replication/#synchronous-replication
   */
  readonly synchronousReplicas?: number;
  /**
   * Node label the instances are spread by (required anti-affinity).
   * @default 'topology.kubernetes.io/zone'
   * @see https://kubernetes.io/docs/reference/labels-annotations-taints/#topologykubernetesiozone
   */
  readonly topologyKey?: string;
  /**
   * Application database.
   * @default 'audit'
   */
  readonly databaseName?: string;
  /**
   * Owner of the database and schema; runs the migrations.
   * @default 'audit_migrator'
   */
  readonly migratorRole?: string;
  /**
   * Runtime role of the api and worker (table rights granted by the server's migrations).
   * @default 'audit_runtime'
   */
  readonly appRole?: string;
  /**
   * `kubernetes.io/basic-auth` Secret (`username`, `password`) of the migrator role.
   * @default '<name>-migrator'
   * @see https://kubernetes.io/docs/concepts/configuration/secret/#basic-authentication-secret
   */
  readonly migratorSecretName?: string;
  /**
   * `kubernetes.io/basic-auth` Secret (`username`, `password`) of the runtime role.
   * @default '<name>-runtime'
   * @see https://kubernetes.io/docs/concepts/configuration/secret/#basic-authentication-secret
   */
  readonly appSecretName?: string;
  /**
   * Data volume per instance, GiB.
   * @default 100
   * @see https://kubernetes.io/docs/concepts/storage/persistent-volumes/
   */
  readonly storageGiB?: number;
  /**
   * StorageClass of the volumes.
   * @default - the cluster's default StorageClass
   * @see https://kubernetes.io/docs/concepts/storage/storage-classes/
   */
  readonly storageClassName?: string;
  /**
   * Resources of each instance.
   * @default - requests 500m / 1Gi / 256Mi ephemeral, limits 2 / 4Gi / 1Gi
   * @see https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/
   */
  readonly resources?: ContainerResources;
  /**
   * Object store (S3-compatible) URL the operator archives WAL and base backups to, e.g.
   * `s3://audit-backups/prod`.
   * @default - no backups (allowed only with `backupRequired: false`)
   * @see https://cloudnative-pg.io/documentation/current/backup/
   */
  readonly backupDestinationPath?: string;
  /**
   * Endpoint of a non-AWS S3-compatible store.
   * @default - AWS S3
   */
  readonly backupEndpointUrl?: string;
  /**
   * Secret with the object store credentials (`ACCESS_KEY_ID`, `ACCESS_SECRET_KEY`).
   * @default '<name>-backup-credentials'
   * @see https://kubernetes.io/docs/concepts/configuration/secret/
   */
  readonly backupCredentialsSecretName?: string;
  /**
   * Days of base backups and WAL kept in the object store (the PITR window).
   * @default 30
   * @see https://kubernetes.io/docs/concepts/storage/
   * @see https://cloudnative-pg.io/documentation/current/backup/#retention-policies
   */
  readonly backupRetentionDays?: number;
  /**
   * Schedule of the full base backups: six fields, seconds first (unlike a CronJob's five), UTC.
   * @default '0 0 2 * * *' - daily at 02:00
   * @see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#schedule-syntax
   * @see https://pkg.go.dev/github.com/robfig/cron#hdr-CRON_Expression_Format
   */
  readonly backupSchedule?: string;
  /**
   * Fail synthesis when no backup destination is set (a production cluster without PITR is a
   * configuration mistake).
   * @default true
   */
  readonly backupRequired?: boolean;
  /**
   * Pods that may connect on 5432.
   * @default - pods labelled app.kubernetes.io/name=audit-server in the same namespace
   * @see https://kubernetes.io/docs/concepts/services-networking/network-policies/
   */
  readonly clients?: NetworkPeer[];
  /**
   * Namespace of the CloudNativePG operator (it reaches the instances' status port 8000).
   * @default 'cnpg-system'
   * @see https://kubernetes.io/docs/concepts/services-networking/network-policies/
   */
  readonly operatorNamespace?: string;
  /**
   * Let the operator create a prometheus-operator PodMonitor for the instances' exporter.
   * @default false
   * @see https://cloudnative-pg.io/documentation/current/monitoring/
   */
  readonly podMonitorEnabled?: boolean;
}

const POSTGRES_PORT = 5432;
const STATUS_PORT = 8000;

const DEFAULT_RESOURCES: ContainerResources = {
  cpuRequest: '500m',
  cpuLimit: '2',
  memoryRequest: '1Gi',
  memoryLimit: '4Gi',
  ephemeralStorageRequest: '256Mi',
  ephemeralStorageLimit: '1Gi',
};

/**
 * PostgreSQL with automated failover through the CloudNativePG operator: a `Cluster` of
 * `replicas` instances spread across zones with quorum synchronous replication, the audit
 * server's two roles, WAL archiving and a `ScheduledBackup` to an object store (point-in-time
 * recovery, docs/disaster-recovery.md), and a NetworkPolicy. The production counterpart of
 * {@link PgVectorDb}; failover itself belongs to the operator, never to this library.
 */
export class PostgresCluster extends Construct {
  /** PostgreSQL port. */
  public static readonly PORT = POSTGRES_PORT;
  /** Default operand image. */
  public static readonly DEFAULT_IMAGE = 'ghcr.io/cloudnative-pg/postgresql:17.6-standard-bookworm';

  /** Name of the Cluster. */
  public readonly name: string;
  /** Namespace. */
  public readonly namespace: string;
  /** DNS name of the read-write Service (always the current primary). */
  public readonly host: string;
  /** DNS name of the read-only Service (hot standbys). */
  public readonly readOnlyHost: string;
  /** PostgreSQL port. */
  public readonly port = POSTGRES_PORT;
  /** Application database. */
  public readonly databaseName: string;
  /** Migrator role. */
  public readonly migratorRole: string;
  /** Runtime role. */
  public readonly appRole: string;
  /** Password of the migrator role. */
  public readonly migratorPasswordSecret: SecretKeyReference;
  /** Password of the runtime role. */
  public readonly appPasswordSecret: SecretKeyReference;
  /** Labels of every instance pod (`cnpg.io/cluster`). */
  public readonly podLabels: { [key: string]: string };
  /** NetworkPolicy peer of the instances. */
  public readonly peer: NetworkPeer;
  /** The CloudNativePG Cluster. */
  public readonly cluster: ApiObject;
  /** The ScheduledBackup, when backups are configured. */
  public readonly scheduledBackup?: ApiObject;

  constructor(scope: Construct, id: string, props: PostgresClusterProps = {}) {
    super(scope, id);
    this.name = props.name ?? 'postgres';
    this.namespace = props.namespace ?? 'smedrec-audit';
    checkDnsLabel('name', this.name);
    checkDnsLabel('namespace', this.namespace);
    const s = checkedSettings(props);
    this.databaseName = props.databaseName ?? 'audit';
    this.migratorRole = props.migratorRole ?? 'audit_migrator';
    this.appRole = props.appRole ?? 'audit_runtime';
    for (const [prop, value] of [['databaseName', this.databaseName], ['migratorRole', this.migratorRole], ['appRole', this.appRole]] as const) {
      if (!/^[a-z_][a-z0-9_]{0,62}$/.test(value)) throw new Error(`invalid ${prop}: '${value}' (expected a lower-case SQL identifier)`);
    }
    const migratorSecret = props.migratorSecretName ?? `${this.name}-migrator`;
    const appSecret = props.appSecretName ?? `${this.name}-runtime`;
    this.migratorPasswordSecret = { secretName: migratorSecret, key: 'password' };
    this.appPasswordSecret = { secretName: appSecret, key: 'password' };
    const ns = this.namespace;
    this.host = `${this.name}-rw.${ns}.svc.cluster.local`;
    this.readOnlyHost = `${this.name}-ro.${ns}.svc.cluster.local`;
    this.podLabels = { 'cnpg.io/cluster': this.name };
    this.peer = { podLabels: this.podLabels, namespace: ns, port: POSTGRES_PORT };
    const labels = recommendedLabels('postgres', this.name, 'database', PART_OF, '17');

    this.cluster = new ApiObject(this, 'Resource', {
      apiVersion: 'postgresql.cnpg.io/v1',
      kind: 'Cluster',
      metadata: objectMeta(this.name, ns, labels),
      spec: {
        instances: s.replicas,
        imageName: s.image,
        primaryUpdateStrategy: 'unsupervised',
        enablePDB: true,
        postgresql: {
          parameters: { max_connections: '200', shared_buffers: '512MB', 'pg_stat_statements.max': '10000', 'pg_stat_statements.track': 'all' },
          ...(s.synchronous > 0 ? { synchronous: { method: 'any', number: s.synchronous, dataDurability: 'required' } } : {}),
        },
        bootstrap: { initdb: { database: this.databaseName, owner: this.migratorRole, secret: { name: migratorSecret }, dataChecksums: true, postInitApplicationSQL: this.postInitSql() } },
        managed: { roles: [{ name: this.appRole, ensure: 'present', login: true, passwordSecret: { name: appSecret } }] },
        enableSuperuserAccess: false,
        storage: { size: `${s.storageGiB}Gi`, ...(props.storageClassName ? { storageClass: props.storageClassName } : {}) },
        resources: plainResources(props.resources ?? DEFAULT_RESOURCES),
        affinity: { enablePodAntiAffinity: true, podAntiAffinityType: 'required', topologyKey: props.topologyKey ?? 'topology.kubernetes.io/zone' },
        monitoring: { enablePodMonitor: props.podMonitorEnabled ?? false },
        ...(s.destination !== undefined ? { backup: objectStoreBackup(s.destination, s.retentionDays, props.backupEndpointUrl, props.backupCredentialsSecretName ?? `${this.name}-backup-credentials`) } : {}),
      },
    });
    setSyncWave(this.cluster, SyncWaves.data);

    if (s.destination !== undefined) {
      this.scheduledBackup = new ApiObject(this, 'ScheduledBackup', {
        apiVersion: 'postgresql.cnpg.io/v1',
        kind: 'ScheduledBackup',
        metadata: objectMeta(`${this.name}-daily`, ns, labels),
        spec: { schedule: s.schedule, backupOwnerReference: 'self', cluster: { name: this.name }, method: 'barmanObjectStore', immediate: true },
      });
      setSyncWave(this.scheduledBackup, SyncWaves.data);
    }
    this.addNetworkPolicy(labels, props.clients, props.operatorNamespace ?? 'cnpg-system');
  }

  /**
   * As PgVectorDb's init script: only the two roles connect, the migrator owns the schema, the
   * runtime role gets exactly the grants the server's migrations name.
   */
  private postInitSql(): string[] {
    return [
      'CREATE EXTENSION IF NOT EXISTS vector',
      'CREATE EXTENSION IF NOT EXISTS pg_stat_statements',
      `REVOKE ALL ON DATABASE ${this.databaseName} FROM PUBLIC`,
      `GRANT CONNECT ON DATABASE ${this.databaseName} TO ${this.appRole}`,
      `ALTER SCHEMA public OWNER TO ${this.migratorRole}`,
      'REVOKE CREATE ON SCHEMA public FROM PUBLIC',
      `GRANT USAGE ON SCHEMA public TO ${this.appRole}`,
      `ALTER ROLE ${this.appRole} SET statement_timeout = '30s'`,
    ];
  }

  /** Clients on 5432; replication and the instance manager between instances; the operator; DNS, API server and object store out. */
  private addNetworkPolicy(labels: { [key: string]: string }, clients: NetworkPeer[] | undefined, operator: string): void {
    checkDnsLabel('operatorNamespace', operator);
    const tcp = (port: number) => ({ protocol: 'TCP', port: k8s.IntOrString.fromNumber(port) });
    const instances = toPolicyPeer({ podLabels: this.podLabels, port: POSTGRES_PORT });
    new PodNetworkPolicy(this, 'NetworkPolicy', {
      metadata: objectMeta(this.name, this.namespace, labels),
      podSelector: this.podLabels,
      ingress: [
        ...ingressFrom(clients ?? [{ podLabels: { 'app.kubernetes.io/name': 'audit-server' }, port: POSTGRES_PORT }], POSTGRES_PORT),
        // Streaming replication and the instance manager between the instances.
        { from: [instances], ports: [tcp(POSTGRES_PORT), tcp(STATUS_PORT)] },
        // The operator checks each instance's status and manages roles.
        { from: [toPolicyPeer({ namespace: operator, port: STATUS_PORT })], ports: [tcp(STATUS_PORT), tcp(POSTGRES_PORT)] },
      ],
      egress: [
        dnsEgressRule(),
        { to: [instances], ports: [tcp(POSTGRES_PORT), tcp(STATUS_PORT)] },
        // The Kubernetes API (the instance manager watches its Cluster) and the object store.
        { to: [{ ipBlock: { cidr: '0.0.0.0/0' } }], ports: [tcp(443), tcp(6443)] },
      ],
    });
  }
}

/** The validated numeric and backup settings. */
function checkedSettings(props: PostgresClusterProps) {
  const replicas = props.replicas ?? 3;
  checkInteger('replicas', replicas, 1);
  const synchronous = props.synchronousReplicas ?? 1;
  checkInteger('synchronousReplicas', synchronous, 0);
  if (synchronous > replicas - 1) {
    throw new Error(`invalid synchronousReplicas: ${synchronous} (expected at most replicas - 1 = ${replicas - 1} standbys)`);
  }
  const image = props.image ?? PostgresCluster.DEFAULT_IMAGE;
  checkImage('image', image);
  const storageGiB = props.storageGiB ?? 100;
  checkInteger('storageGiB', storageGiB, 1);
  const retentionDays = props.backupRetentionDays ?? 30;
  checkInteger('backupRetentionDays', retentionDays, 1);
  const schedule = props.backupSchedule ?? '0 0 2 * * *';
  if (schedule.trim().split(/\s+/).length !== 6) throw new Error(`invalid backupSchedule: '${schedule}' (expected six cron fields, seconds first)`);
  const destination = props.backupDestinationPath;
  if (destination !== undefined && !/^(s3|gs|https?):\/\/\S+$/.test(destination)) {
    throw new Error(`invalid backupDestinationPath: '${destination}' (expected an s3://, gs:// or https:// URL)`);
  }
  if (destination === undefined && (props.backupRequired ?? true)) {
    throw new Error('missing backupDestinationPath: a production cluster archives WAL for point-in-time recovery (or set backupRequired: false)');
  }
  return { replicas, synchronous, image, storageGiB, retentionDays, schedule, destination };
}

/** Plain quantities (an ApiObject's spec is rendered as given, not through the k8s types). */
function plainResources(r: ContainerResources) {
  return {
    requests: { cpu: r.cpuRequest, memory: r.memoryRequest, 'ephemeral-storage': r.ephemeralStorageRequest },
    limits: { cpu: r.cpuLimit, memory: r.memoryLimit, 'ephemeral-storage': r.ephemeralStorageLimit },
  };
}

/** WAL archiving and base backups through Barman Cloud, compressed and encrypted at rest. */
function objectStoreBackup(destination: string, retentionDays: number, endpointUrl: string | undefined, credentialsSecret: string) {
  return {
    retentionPolicy: `${retentionDays}d`,
    barmanObjectStore: {
      destinationPath: destination,
      ...(endpointUrl ? { endpointURL: endpointUrl } : {}),
      s3Credentials: {
        accessKeyId: { name: credentialsSecret, key: 'ACCESS_KEY_ID' },
        secretAccessKey: { name: credentialsSecret, key: 'ACCESS_SECRET_KEY' },
      },
      wal: { compression: 'gzip', encryption: 'AES256' },
      data: { compression: 'gzip', encryption: 'AES256' },
    },
  };
}
