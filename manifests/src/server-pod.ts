// What the api, worker and migration pods of AuditServer share: the image, the configuration
// and secrets each role reads, the migration container (a Job's or an init container) and the
// writable /tmp. Internal to the library.
import type { k8s } from 'cdk8s-plus-28';
import type { ContainerResources } from './container-resources';
import {
  emptyDirVolume,
  hardenedContainer,
  secretEnv,
  toResourceRequirements,
} from './workload-defaults';

/** The process role of a server pod (`AUDIT_ROLE`, server/src/config.ts). */
export type ServerRole = 'api' | 'worker' | 'migrate';

/** What every server pod is built from. */
export interface ServerPodOptions {
  /** Full image reference. */
  readonly image: string;
  /** ServiceAccount of the pods (it has no token). */
  readonly serviceAccountName: string;
  /** ConfigMap with the non-secret configuration, read as environment variables. */
  readonly configMapName: string;
  /** Secret with the connection strings and keys. */
  readonly secretName: string;
  /** Key of the migration role's connection string in that Secret. */
  readonly migrationDatabaseUrlKey: string;
}

/** The `/tmp` emptyDir every server container mounts (the root filesystem is read-only). */
export const SERVER_TMP_VOLUME = 'tmp';

/** The pod volumes of a server pod. */
export function serverVolumes(): k8s.Volume[] {
  return [emptyDirVolume(SERVER_TMP_VOLUME, '256Mi')];
}

/** Environment of a server container of `role`: the role, then the secrets, by reference. */
export function serverEnv(pod: ServerPodOptions, role: ServerRole): k8s.EnvVar[] {
  const secret = (key: string) => ({ secretName: pod.secretName, key });
  return [
    { name: 'AUDIT_ROLE', value: role },
    secretEnv('DATABASE_URL', secret(role === 'migrate' ? pod.migrationDatabaseUrlKey : 'database-url')),
    secretEnv('REDIS_URL', secret('redis-url')),
    // loadConfig() refuses NODE_ENV=production without a signing key, in every role.
    secretEnv('AUDIT_SIGNING_KEY', secret('signing-key')),
    secretEnv('AUDIT_BOOTSTRAP_API_KEY', secret('bootstrap-api-key'), true),
  ];
}

/** The parts of a server container every role has. */
export function serverContainerBase(pod: ServerPodOptions, role: ServerRole, resources: ContainerResources): k8s.Container {
  return hardenedContainer({
    name: role,
    image: pod.image,
    envFrom: [{ configMapRef: { name: pod.configMapName } }],
    env: serverEnv(pod, role),
    resources: toResourceRequirements(resources),
    volumeMounts: [{ name: SERVER_TMP_VOLUME, mountPath: '/tmp' }],
  });
}

/** The migration container (`AUDIT_ROLE=migrate`): applies pending migrations and exits. */
export function migrateContainer(pod: ServerPodOptions, resources: ContainerResources): k8s.Container {
  return serverContainerBase(pod, 'migrate', resources);
}
