import { k8s } from 'cdk8s-plus-28';
import type { Construct } from 'constructs';
import type { ContainerResources } from './container-resources';
import type { ServerPodOptions } from './server-pod';
import { migrateContainer, serverVolumes } from './server-pod';
import { hardenedPodSpec, objectMeta, setSyncWave } from './workload-defaults';

/** Props of {@link MigrationJob}. */
export interface MigrationJobProps {
  /** Base name of the server; the Job is `<baseName>-migrate-<version>`. */
  readonly baseName: string;
  /** Server version (image tag), part of the Job's name. */
  readonly version: string;
  /** Namespace of the Job. */
  readonly namespace: string;
  /** Labels of the Job and its pod. */
  readonly labels: { [key: string]: string };
  /** Image, configuration and secrets. */
  readonly pod: ServerPodOptions;
  /** Container resources. */
  readonly resources: ContainerResources;
  /** Argo CD hook phase the Job runs in: `PreSync` or `Sync`. */
  readonly hook: 'PreSync' | 'Sync';
  /**
   * Argo CD sync wave within the hook phase.
   * @default - none (wave 0)
   */
  readonly syncWave?: number;
}

/**
 * The migration Job of the audit server (`AUDIT_ROLE=migrate`) as an Argo CD hook: it retries
 * with back-off while the database comes up and is replaced, not re-run, on the next sync.
 * Internal to the library (`MigrationMode.JOB_PRE_SYNC`, `MigrationMode.JOB_SYNC_WAVE`).
 *
 * @see https://kubernetes.io/docs/concepts/workloads/controllers/job/
 */
export class MigrationJob extends k8s.KubeJob {
  /** Name of a Job for `version`: the version is part of it (see the constructor). */
  public static jobName(baseName: string, version: string): string {
    return `${baseName}-migrate-${version.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}`.slice(0, 63).replace(/-+$/, '');
  }

  constructor(scope: Construct, id: string, props: MigrationJobProps) {
    super(scope, id, {
      // The version is part of the name: a Job's pod template is immutable, so a plain
      // `kubectl apply` of a new version creates a new Job instead of failing.
      metadata: {
        ...objectMeta(MigrationJob.jobName(props.baseName, props.version), props.namespace, props.labels),
        annotations: {
          // https://argo-cd.readthedocs.io/en/stable/user-guide/resource_hooks/
          'argocd.argoproj.io/hook': props.hook,
          'argocd.argoproj.io/hook-delete-policy': 'BeforeHookCreation',
        },
      },
      spec: {
        // Retries with exponential back-off (10 s, 20 s, … capped at 6 min) while the
        // database comes up on a fresh cluster.
        backoffLimit: 6,
        activeDeadlineSeconds: 1800,
        ttlSecondsAfterFinished: 86_400,
        template: {
          metadata: { labels: props.labels },
          spec: hardenedPodSpec({
            serviceAccountName: props.pod.serviceAccountName,
            restartPolicy: 'Never',
            containers: [migrateContainer(props.pod, props.resources)],
            volumes: serverVolumes(props.pod, ['migrate']),
          }),
        },
      },
    });
    if (props.syncWave !== undefined) setSyncWave(this, props.syncWave);
  }
}
