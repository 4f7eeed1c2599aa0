import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import type { ContainerResources } from './container-resources';
import { ElectricSync } from './electric-sync';
import type { NetworkPeer } from './network-peer';
import { PodNetworkPolicy } from './pod-network-policy';
import { backupScript, PostgresBackup } from './postgres-backup';
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

export { backupScript };

/** Optional ElectricSQL sync service in front of the database. */
export interface ElectricOptions {
  /**
   * ElectricSQL image (pinned).
   * @default 'electricsql/electric:1.0.0'
   * @see https://kubernetes.io/docs/concepts/containers/images/
   */
  readonly image?: string;
  /**
   * Connection string Electric uses; its role needs the REPLICATION attribute
   * (`wal_level=logical` is already set).
   * @default - key `electric-database-url` of the credentials Secret
   * @see https://kubernetes.io/docs/concepts/configuration/secret/
   */
  readonly databaseUrlSecret?: SecretKeyReference;
  /**
   * `ELECTRIC_SECRET` that clients must present.
   * @default - key `electric-secret` of the credentials Secret
   * @see https://kubernetes.io/docs/concepts/configuration/secret/
   */
  readonly electricSecret?: SecretKeyReference;
  /**
   * Pods allowed to call Electric's HTTP API on port 3000.
   * @default - pods labelled app.kubernetes.io/name=audit-server in the same namespace
   * @see https://kubernetes.io/docs/concepts/services-networking/network-policies/
   */
  readonly clients?: NetworkPeer[];
}

/** Props of {@link PgVectorDb}. */
export interface PgVectorDbProps {
  /**
   * Base name of the objects; also the Service name.
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
   * PostgreSQL 17 image with pgvector, pinned to a pgvector release (`<pgvector>-pg17`): the
   * rolling `pg17` tag moves with every pgvector and PostgreSQL minor release.
   * @default PgVectorDb.DEFAULT_IMAGE ('pgvector/pgvector:0.8.6-pg17')
   * @see https://kubernetes.io/docs/concepts/containers/images/#image-names
   */
  readonly image?: string;
  /**
   * Database created at initialization.
   * @default 'audit'
   */
  readonly databaseName?: string;
  /**
   * Superuser name (`POSTGRES_USER`).
   * @default 'postgres'
   */
  readonly superuser?: string;
  /**
   * Secret with the keys `superuser-password`, `migrator-password`, `app-password` (and, with
   * Electric, `electric-database-url`, `electric-secret`).
   * @default 'postgres-credentials'
   * @see https://kubernetes.io/docs/concepts/configuration/secret/
   */
  readonly credentialsSecretName?: string;
  /**
   * Role that owns the schema and runs migrations.
   * @default 'audit_migrator'
   */
  readonly migratorRole?: string;
  /**
   * Runtime role of the server (api pods). The server's migration 0004 grants it SELECT/INSERT,
   * plus UPDATE only where a trigger narrows it (erasure, head advance, key retirement), when a
   * role of exactly this name exists; another name gets no grants from the server.
   * @default 'audit_runtime'
   */
  readonly appRole?: string;
  /**
   * Data volume size, GiB.
   * @default 20
   * @see https://kubernetes.io/docs/concepts/storage/persistent-volumes/
   */
  readonly storageGiB?: number;
  /**
   * StorageClass of the data and backup volumes.
   * @default - the cluster's default StorageClass
   * @see https://kubernetes.io/docs/concepts/storage/storage-classes/
   */
  readonly storageClassName?: string;
  /**
   * `max_connections`.
   * @default 200
   * @see https://www.postgresql.org/docs/17/runtime-config-connection.html
   */
  readonly maxConnections?: number;
  /**
   * `shared_buffers` in MiB.
   * @default 256
   * @see https://www.postgresql.org/docs/17/runtime-config-resource.html
   */
  readonly sharedBuffersMiB?: number;
  /**
   * Size of the memory-backed `/dev/shm` (parallel query workers use it), MiB.
   * @default 256
   * @see https://kubernetes.io/docs/concepts/storage/volumes/#emptydir
   */
  readonly shmSizeMiB?: number;
  /**
   * Container resources.
   * @default - requests 500m / 1Gi / 256Mi ephemeral, limits 2 / 2Gi / 1Gi
   * @see https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/
   */
  readonly resources?: ContainerResources;
  /**
   * Pods allowed to connect on 5432 (the backup job and Electric are added automatically).
   * @default - pods labelled app.kubernetes.io/name=audit-server in the same namespace
   * @see https://kubernetes.io/docs/concepts/services-networking/network-policies/
   */
  readonly clients?: NetworkPeer[];
  /**
   * Deploy ElectricSQL.
   * @default false
   * @see https://electric-sql.com/docs/guides/deployment
   */
  readonly electricEnabled?: boolean;
  /**
   * ElectricSQL settings.
   * @default - see {@link ElectricOptions}
   * @see https://electric-sql.com/docs/guides/deployment
   */
  readonly electric?: ElectricOptions;
  /**
   * Run a nightly logical backup (pg_dump, custom format, compressed) to a PVC.
   * @default true
   * @see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/
   */
  readonly backupEnabled?: boolean;
  /**
   * Cron schedule of the backup, in UTC.
   * @default '15 2 * * *'
   * @see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#schedule-syntax
   */
  readonly backupSchedule?: string;
  /**
   * Days a backup file is kept.
   * @default 14
   * @see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/
   */
  readonly backupRetentionDays?: number;
  /**
   * Backup volume size, GiB.
   * @default 50
   * @see https://kubernetes.io/docs/concepts/storage/persistent-volumes/
   */
  readonly backupStorageGiB?: number;
}

/** Port PostgreSQL listens on. */
export const POSTGRES_PORT = 5432;

/** pgvector 0.8.6 on PostgreSQL 17 (tag format `<pgvector version>-pg<major>`, pgvector README "Docker"). */
export const PGVECTOR_IMAGE = 'pgvector/pgvector:0.8.6-pg17';

/**
 * PostgreSQL 17 with pgvector as a StatefulSet: `pg_stat_statements` preloaded, logical WAL,
 * init SQL that creates the `vector` extension and the migration/runtime roles with passwords
 * from a Secret, `pg_isready` probes, PDB, NetworkPolicy, an optional ElectricSQL Deployment
 * and a backup CronJob.
 *
 * Restore (see manifests/README.md): stop writers, then run `pg_restore --clean --if-exists
 * --exit-on-error --dbname=<db> <file>` as the superuser against a file from the backup volume.
 */
export class PgVectorDb extends Construct {
  /** Port PostgreSQL listens on. */
  public static readonly PORT = POSTGRES_PORT;
  /** Image used when `image` is not set: pgvector 0.8.6 on PostgreSQL 17, an exact release tag. */
  public static readonly DEFAULT_IMAGE = PGVECTOR_IMAGE;

  /** The init script that creates the extensions and roles (see {@link initRolesScript}). */
  public static initRolesScript(migratorRole: string, appRole: string): string {
    return initRolesScript(migratorRole, appRole);
  }

  /** The backup job's shell script (see {@link backupScript}). */
  public static backupScript(retentionDays: number): string {
    return backupScript(retentionDays);
  }

  /** Base name (and Service name). */
  public readonly name: string;
  /** Namespace. */
  public readonly namespace: string;
  /** In-cluster host name. */
  public readonly host: string;
  /** Port. */
  public readonly port = POSTGRES_PORT;
  /** Database name. */
  public readonly databaseName: string;
  /** Role that owns the schema and runs migrations. */
  public readonly migratorRole: string;
  /** Runtime role of the server. */
  public readonly appRole: string;
  /** Superuser password. */
  public readonly superuserPasswordSecret: SecretKeyReference;
  /** Password of the migration role. */
  public readonly migratorPasswordSecret: SecretKeyReference;
  /** Password of the runtime role. */
  public readonly appPasswordSecret: SecretKeyReference;
  /** Selector labels of the database pods. */
  public readonly podLabels: { [key: string]: string };
  /** NetworkPolicy peer for clients (`AuditServerProps.database`). */
  public readonly peer: NetworkPeer;
  /** Name of the PVC holding backups (when backups are enabled). */
  public readonly backupClaimName?: string;
  /** The StatefulSet. */
  public readonly statefulSet: k8s.KubeStatefulSet;

  constructor(scope: Construct, id: string, props: PgVectorDbProps = {}) {
    super(scope, id);
    this.name = props.name ?? 'postgres';
    this.namespace = props.namespace ?? 'smedrec-audit';
    checkDnsLabel('namespace', this.namespace);
    checkDnsLabel('name', this.name);
    this.databaseName = props.databaseName ?? 'audit';
    this.migratorRole = props.migratorRole ?? 'audit_migrator';
    this.appRole = props.appRole ?? 'audit_runtime';
    const superuser = props.superuser ?? 'postgres';
    const credentials = props.credentialsSecretName ?? 'postgres-credentials';
    this.superuserPasswordSecret = { secretName: credentials, key: 'superuser-password' };
    this.migratorPasswordSecret = { secretName: credentials, key: 'migrator-password' };
    this.appPasswordSecret = { secretName: credentials, key: 'app-password' };
    const image = props.image ?? PGVECTOR_IMAGE;
    checkImage('image', image);
    const settings = checkedSettings(props, { databaseName: this.databaseName, migratorRole: this.migratorRole, appRole: this.appRole, superuser });

    const ns = this.namespace;
    this.host = `${this.name}.${ns}.svc.cluster.local`;
    this.podLabels = selectorLabels('postgres', this.name, 'database');
    this.peer = { podLabels: this.podLabels, namespace: ns, port: POSTGRES_PORT };
    const labels = recommendedLabels('postgres', this.name, 'database', PART_OF, '17');
    const meta = (name: string) => objectMeta(name, ns, labels);

    const conf = postgresqlConf(settings.maxConnections, settings.sharedBuffersMiB);
    const config = new k8s.KubeConfigMap(this, 'Config', { metadata: meta(`${this.name}-config`), data: { 'postgresql.conf': conf } });
    const initdb = new k8s.KubeConfigMap(this, 'InitScripts', {
      metadata: meta(`${this.name}-initdb`),
      data: { '10-audit-roles.sh': initRolesScript(this.migratorRole, this.appRole) },
    });
    for (const cm of [config, initdb]) setSyncWave(cm, SyncWaves.config);

    // One instance: high availability belongs to a PostgreSQL operator (docs/architecture.md §8).
    const store = new StatefulService(this, 'Resource', {
      name: this.name,
      namespace: ns,
      labels,
      selector: this.podLabels,
      port: { name: 'postgres', port: POSTGRES_PORT, targetPort: k8s.IntOrString.fromString('postgres'), protocol: 'TCP' },
      updateStrategy: { type: 'RollingUpdate' },
      podAnnotations: { 'checksum/config': contentHash(conf) },
      // A clean shutdown (checkpoint) avoids crash recovery on the next start.
      terminationGracePeriodSeconds: 120,
      containers: [this.postgresContainer(image, superuser, settings.resources)],
      volumes: [
        { name: 'config', configMap: { name: config.name } },
        { name: 'initdb', configMap: { name: initdb.name, defaultMode: 0o444 } },
        emptyDirVolume('run', '1Mi', 'Memory'),
        emptyDirVolume('tmp', '256Mi'),
        emptyDirVolume('shm', `${settings.shmSizeMiB}Mi`, 'Memory'),
      ],
      storageGiB: settings.storageGiB,
      storageClassName: props.storageClassName,
    });
    this.statefulSet = store.statefulSet;

    const clients: NetworkPeer[] = [...(props.clients ?? [{ podLabels: { 'app.kubernetes.io/name': 'audit-server' }, port: POSTGRES_PORT }])];
    if (props.electricEnabled ?? false) clients.push({ podLabels: this.addElectric(props.electric ?? {}, credentials).podLabels, port: POSTGRES_PORT });
    if (props.backupEnabled ?? true) {
      const backup = this.addBackup(props, image, superuser);
      this.backupClaimName = backup.claimName;
      clients.push({ podLabels: backup.podLabels, port: POSTGRES_PORT });
    }
    new PodNetworkPolicy(this, 'NetworkPolicy', {
      metadata: meta(this.name),
      podSelector: this.podLabels,
      ingress: ingressFrom(clients, POSTGRES_PORT),
      egress: [dnsEgressRule()],
    });
  }

  /** Connection string of `role` without a password (libpq reads it from PGPASSWORD or a URL the operator builds). */
  public connectionUrl(role: string): string {
    return `postgresql://${role}@${this.host}:${POSTGRES_PORT}/${this.databaseName}`;
  }

  private postgresContainer(image: string, superuser: string, resources: ContainerResources): k8s.Container {
    const isReady = `pg_isready --host=127.0.0.1 --port=${POSTGRES_PORT} --username="$POSTGRES_USER" --dbname="$POSTGRES_DB"`;
    // pg_isready exits 0 (accepting), 1 (rejecting: starting up or recovering) or 2 (no
    // response). Liveness accepts 0 and 1, so a long crash recovery is not killed mid-way.
    const isAlive = `pg_isready --host=/var/run/postgresql --port=${POSTGRES_PORT}; test $? -ne 2`;
    return hardenedContainer({
      name: 'postgres',
      image,
      args: ['postgres', '-c', 'config_file=/etc/postgresql/postgresql.conf'],
      ports: [{ name: 'postgres', containerPort: POSTGRES_PORT, protocol: 'TCP' }],
      env: [
        { name: 'POSTGRES_USER', value: superuser },
        secretEnv('POSTGRES_PASSWORD', this.superuserPasswordSecret),
        { name: 'POSTGRES_DB', value: this.databaseName },
        // A sub-directory of the mount: initdb refuses a non-empty directory (lost+found).
        { name: 'PGDATA', value: '/var/lib/postgresql/data/pgdata' },
        { name: 'POSTGRES_INITDB_ARGS', value: '--data-checksums --auth-host=scram-sha-256' },
        secretEnv('AUDIT_MIGRATOR_PASSWORD', this.migratorPasswordSecret),
        secretEnv('AUDIT_APP_PASSWORD', this.appPasswordSecret),
      ],
      resources: toResourceRequirements(resources),
      volumeMounts: [
        { name: 'data', mountPath: '/var/lib/postgresql/data' },
        { name: 'config', mountPath: '/etc/postgresql', readOnly: true },
        { name: 'initdb', mountPath: '/docker-entrypoint-initdb.d', readOnly: true },
        { name: 'run', mountPath: '/var/run/postgresql' },
        { name: 'tmp', mountPath: '/tmp' },
        { name: 'shm', mountPath: '/dev/shm' },
      ],
      // initdb plus the first start can take minutes on slow volumes: 10 minutes of grace.
      startupProbe: { exec: { command: ['sh', '-c', isAlive] }, periodSeconds: 5, timeoutSeconds: 5, failureThreshold: 120 },
      livenessProbe: { exec: { command: ['sh', '-c', isAlive] }, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 6 },
      // TCP on 127.0.0.1: during initialization the entrypoint's temporary server listens on the
      // socket only, so the pod is not ready until the real server accepts network clients.
      readinessProbe: { exec: { command: ['sh', '-c', isReady] }, periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 3 },
    });
  }

  private addElectric(opts: ElectricOptions, credentials: string): ElectricSync {
    return new ElectricSync(this, 'Electric', {
      name: `${this.name}-electric`,
      namespace: this.namespace,
      image: opts.image ?? 'electricsql/electric:1.0.0',
      databaseUrlSecret: opts.databaseUrlSecret ?? { secretName: credentials, key: 'electric-database-url' },
      electricSecret: opts.electricSecret ?? { secretName: credentials, key: 'electric-secret' },
      clients: opts.clients ?? [{ podLabels: { 'app.kubernetes.io/name': 'audit-server' }, port: 3000 }],
      database: this.peer,
    });
  }

  private addBackup(props: PgVectorDbProps, image: string, superuser: string): PostgresBackup {
    return new PostgresBackup(this, 'Backup', {
      name: this.name,
      namespace: this.namespace,
      image,
      connection: { host: this.host, port: POSTGRES_PORT, databaseName: this.databaseName, user: superuser },
      password: this.superuserPasswordSecret,
      database: this.peer,
      schedule: props.backupSchedule ?? '15 2 * * *',
      retentionDays: props.backupRetentionDays ?? 14,
      storageGiB: props.backupStorageGiB ?? 50,
      storageClassName: props.storageClassName,
    });
  }
}

/** The numeric settings and resources of {@link PgVectorDbProps}, defaulted and checked. */
function checkedSettings(
  props: PgVectorDbProps,
  identifiers: { databaseName: string; migratorRole: string; appRole: string; superuser: string },
): { storageGiB: number; shmSizeMiB: number; maxConnections: number; sharedBuffersMiB: number; resources: ContainerResources } {
  for (const [prop, value] of Object.entries(identifiers)) {
    // Plain identifiers only: they are interpolated into SQL and shell.
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(value)) {
      throw new Error(`invalid ${prop}: '${value}' (expected a lower-case sql identifier)`);
    }
  }
  const numbers = {
    storageGiB: props.storageGiB ?? 20,
    shmSizeMiB: props.shmSizeMiB ?? 256,
    maxConnections: props.maxConnections ?? 200,
    sharedBuffersMiB: props.sharedBuffersMiB ?? 256,
  };
  for (const [prop, value] of Object.entries(numbers)) {
    checkInteger(prop, value, 1);
  }
  const resources: ContainerResources = props.resources ?? {
    cpuRequest: '500m',
    cpuLimit: '2',
    memoryRequest: '1Gi',
    memoryLimit: '2Gi',
    ephemeralStorageRequest: '256Mi',
    ephemeralStorageLimit: '1Gi',
  };
  for (const [k, v] of Object.entries(resources)) checkQuantity(`resources.${k}`, v as string);
  return { ...numbers, resources };
}

/** postgresql.conf of the pod (read at start; a change rolls the pod through the checksum annotation). */
function postgresqlConf(maxConnections: number, sharedBuffersMiB: number): string {
  return [
    "listen_addresses = '*'",
    `port = ${POSTGRES_PORT}`,
    `max_connections = ${maxConnections}`,
    `shared_buffers = ${sharedBuffersMiB}MB`,
    "shared_preload_libraries = 'pg_stat_statements'",
    'pg_stat_statements.track = all',
    // Logical decoding for ElectricSQL and future CDC consumers.
    'wal_level = logical',
    'max_wal_senders = 10',
    'max_replication_slots = 10',
    "password_encryption = 'scram-sha-256'",
    "unix_socket_directories = '/var/run/postgresql'",
    'dynamic_shared_memory_type = posix',
    "log_destination = 'stderr'",
    'logging_collector = off',
    'log_connections = on',
    'log_disconnections = on',
    'log_min_duration_statement = 1000',
    "log_line_prefix = '%m [%p] %q%u@%d '",
    "timezone = 'UTC'",
    "datestyle = 'iso, mdy'",
    '',
  ].join('\n');
}

/**
 * Shell script run once by the image's entrypoint after initdb (files in
 * /docker-entrypoint-initdb.d). Passwords come from environment variables filled from the
 * Secret and reach psql through `\getenv` (psql ≥ 15), so they appear neither in the ConfigMap
 * nor on a command line. psql's `:'var'` / `:"var"` interpolation quotes them as literals and
 * identifiers.
 */
export function initRolesScript(migratorRole: string, appRole: string): string {
  return `#!/bin/sh
# Creates the pgvector extension and the two roles of the audit server (docs/architecture.md §4.4):
# ${migratorRole} owns the database and schema and runs migrations; ${appRole} is the runtime role,
# whose table rights the server's own migrations grant (server/migrations/0004), table by table.
set -eu
: "\${AUDIT_MIGRATOR_PASSWORD:?AUDIT_MIGRATOR_PASSWORD must be set from the Secret}"
: "\${AUDIT_APP_PASSWORD:?AUDIT_APP_PASSWORD must be set from the Secret}"
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \\
  -v migrator=${migratorRole} -v app=${appRole} <<'SQL'
\\getenv migrator_password AUDIT_MIGRATOR_PASSWORD
\\getenv app_password AUDIT_APP_PASSWORD
\\getenv db POSTGRES_DB
CREATE EXTENSION IF NOT EXISTS vector;
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
CREATE ROLE :"migrator" LOGIN PASSWORD :'migrator_password';
CREATE ROLE :"app" LOGIN PASSWORD :'app_password';
-- Only the two roles (and the superuser) may connect; the migrator owns database and schema.
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
ALTER DATABASE :"db" OWNER TO :"migrator";
GRANT CONNECT ON DATABASE :"db" TO :"app";
ALTER SCHEMA public OWNER TO :"migrator";
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO :"app";
-- No default privileges: the runtime role gets exactly the grants the server's migrations name
-- (SELECT/INSERT, UPDATE only where a trigger narrows it), never rights on tables by accident.
ALTER ROLE :"app" SET statement_timeout = '30s';
SQL
`;
}
