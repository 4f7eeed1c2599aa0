import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import type { NetworkPeer } from './network-peer';
import { PodNetworkPolicy } from './pod-network-policy';
import type { SecretKeyReference } from './secret-reference';
import { PART_OF } from './version';
import {
  checkInteger,
  dnsEgressRule,
  egressTo,
  emptyDirVolume,
  hardenedContainer,
  hardenedPodSpec,
  objectMeta,
  recommendedLabels,
  secretEnv,
  selectorLabels,
  setSyncWave,
  SyncWaves,
  toResourceRequirements,
} from './workload-defaults';

/** Props of {@link PostgresBackup}. */
export interface PostgresBackupProps {
  /** Name of the database construct: objects are `<name>-backup`, the claim `<name>-backups`. */
  readonly name: string;
  /** Namespace of every object. */
  readonly namespace: string;
  /** Image with `pg_dump` of the server's major version (the database image itself). */
  readonly image: string;
  /** Host, port, database and superuser the dump connects to. */
  readonly connection: { readonly host: string; readonly port: number; readonly databaseName: string; readonly user: string };
  /** Password of `connection.user`. */
  readonly password: SecretKeyReference;
  /** The database pods (egress NetworkPolicy). */
  readonly database: NetworkPeer;
  /** Cron schedule, UTC. */
  readonly schedule: string;
  /** Days a dump is kept. */
  readonly retentionDays: number;
  /** Size of the backup volume, GiB. */
  readonly storageGiB: number;
  /**
   * StorageClass of the backup volume.
   * @default - the cluster's default StorageClass
   */
  readonly storageClassName?: string;
}

/**
 * Nightly logical backups of `PgVectorDb`: a PVC, a CronJob running {@link backupScript} and a
 * NetworkPolicy that lets it reach the database only. Internal to the library
 * (`PgVectorDbProps.backupEnabled`).
 *
 * @see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/
 */
export class PostgresBackup extends Construct {
  /** Selector labels of the backup pods. */
  public readonly podLabels: { [key: string]: string };
  /** Name of the PVC the dumps are written to. */
  public readonly claimName: string;

  constructor(scope: Construct, id: string, props: PostgresBackupProps) {
    super(scope, id);
    checkInteger('backupRetentionDays', props.retentionDays, 1);
    if (props.schedule.trim().split(/\s+/).length !== 5) {
      throw new Error(`invalid backupSchedule: '${props.schedule}' (expected five cron fields)`);
    }
    this.podLabels = selectorLabels('postgres', props.name, 'backup');
    const labels = recommendedLabels('postgres', props.name, 'backup', PART_OF);
    const meta = objectMeta(`${props.name}-backup`, props.namespace, labels);
    const claim = new k8s.KubePersistentVolumeClaim(this, 'Claim', {
      metadata: { ...meta, name: `${props.name}-backups` },
      spec: {
        accessModes: ['ReadWriteOnce'],
        ...(props.storageClassName ? { storageClassName: props.storageClassName } : {}),
        resources: { requests: { storage: k8s.Quantity.fromString(`${props.storageGiB}Gi`) } },
      },
    });
    this.claimName = claim.name;
    // Last wave: with a WaitForFirstConsumer StorageClass the claim stays Pending (Argo CD health
    // "Progressing") until the first backup pod mounts it, and an earlier wave would wait for it.
    setSyncWave(claim, SyncWaves.edge);
    const cron = new k8s.KubeCronJob(this, 'Resource', {
      metadata: meta,
      spec: {
        schedule: props.schedule,
        timeZone: 'Etc/UTC',
        concurrencyPolicy: 'Forbid',
        startingDeadlineSeconds: 3600,
        successfulJobsHistoryLimit: 3,
        failedJobsHistoryLimit: 3,
        jobTemplate: {
          spec: {
            backoffLimit: 2,
            activeDeadlineSeconds: 6 * 3600,
            template: {
              metadata: { labels },
              spec: hardenedPodSpec({
                restartPolicy: 'OnFailure',
                containers: [pgDumpContainer(props)],
                volumes: [{ name: 'backups', persistentVolumeClaim: { claimName: claim.name } }, emptyDirVolume('tmp', '64Mi')],
              }),
            },
          },
        },
      },
    });
    setSyncWave(cron, SyncWaves.app);
    new PodNetworkPolicy(this, 'NetworkPolicy', {
      metadata: meta,
      podSelector: this.podLabels,
      ingress: [],
      egress: [dnsEgressRule(), egressTo(props.database)],
    });
  }
}

function pgDumpContainer(props: PostgresBackupProps): k8s.Container {
  return hardenedContainer({
    name: 'pg-dump',
    image: props.image,
    command: ['sh', '-c', backupScript(props.retentionDays)],
    env: [
      { name: 'PGHOST', value: props.connection.host },
      { name: 'PGPORT', value: String(props.connection.port) },
      { name: 'PGUSER', value: props.connection.user },
      { name: 'PGDATABASE', value: props.connection.databaseName },
      secretEnv('PGPASSWORD', props.password),
    ],
    resources: toResourceRequirements({
      cpuRequest: '100m',
      cpuLimit: '1',
      memoryRequest: '128Mi',
      memoryLimit: '512Mi',
      ephemeralStorageRequest: '64Mi',
      ephemeralStorageLimit: '256Mi',
    }),
    volumeMounts: [
      { name: 'backups', mountPath: '/backups' },
      { name: 'tmp', mountPath: '/tmp' },
    ],
  });
}

/**
 * Backup job script: a custom-format (compressed, restorable with pg_restore) dump written
 * under a temporary name and renamed when complete, so a half-written file is never taken for
 * a backup; files older than the retention are deleted afterwards.
 */
export function backupScript(retentionDays: number): string {
  return `set -eu
umask 077
ts=$(date -u +%Y%m%dT%H%M%SZ)
file="/backups/\${PGDATABASE}-\${ts}.dump"
pg_dump --format=custom --compress=6 --no-password --file="\${file}.partial"
mv "\${file}.partial" "\${file}"
find /backups -maxdepth 1 -type f -name "\${PGDATABASE}-*.dump" -mtime +${retentionDays} -delete
find /backups -maxdepth 1 -type f -name '*.partial' -mmin +1440 -delete
echo "backup written: \${file} ($(wc -c < "\${file}") bytes)"
`;
}
