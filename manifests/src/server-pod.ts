// What the api, worker and migration pods of AuditServer share: the image, the configuration
// and the secrets each role reads, the migration container (a Job's or an init container) and
// the writable /tmp. Internal to the library.
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
  /**
   * Redis is a Sentinel group: api and worker get its sentinels (comma-separated `host:port`) and
   * master name, and read the sentinels' password.
   */
  readonly redisSentinel?: { readonly sentinels: string; readonly masterName: string };
  /**
   * The worker archives retention bundles to an S3-compatible bucket: its `RETENTION_ARCHIVE_S3_*`
   * settings, and either a static access key from the Secret (as files) or a web identity (an
   * audience-bound projected token of the pod's ServiceAccount, exchanged with STS for the role).
   */
  readonly archiveBucket?: {
    readonly env: k8s.EnvVar[];
    readonly staticAccessKey: boolean;
    readonly webIdentity?: { readonly roleArn: string; readonly audience: string };
  };
}

/** Where the worker finds the projected web-identity token of its ServiceAccount. */
export const WEB_IDENTITY_TOKEN_DIR = '/var/run/secrets/audit-server/web-identity';
const WEB_IDENTITY_VOLUME = 'web-identity-token';

/** The `/tmp` emptyDir every server container mounts (the root filesystem is read-only). */
export const SERVER_TMP_VOLUME = 'tmp';

/** Where a server container finds its secret files (`<NAME>_FILE`). */
export const SERVER_SECRETS_DIR = '/run/secrets/audit-server';

/** A secret-bearing server variable and the key of the Secret it comes from. */
interface SecretBinding {
  /** Server variable (`FILE_VARIABLES` in server/src/config.ts). */
  readonly variable: string;
  /** Key in the Secret. */
  readonly key: string;
  /** The role starts without it (then it is an optional env reference, see below). */
  readonly optional?: boolean;
}

/**
 * The secrets a role uses and nothing else (docs/deploying.md "Secrets per role"; the server's
 * `ROLE_SECRETS` is the list a test holds this against): `migrate` only the owner's connection
 * string, `api` the signing, session, delivery, bootstrap and Inngest keys, `worker` public
 * verifier keys and the delivery key.
 */
function roleSecrets(pod: ServerPodOptions, role: ServerRole): SecretBinding[] {
  const sentinel = pod.redisSentinel ? [{ variable: 'REDIS_SENTINEL_PASSWORD', key: 'redis-sentinel-password' }] : [];
  switch (role) {
    case 'migrate':
      return [{ variable: 'DATABASE_URL', key: pod.migrationDatabaseUrlKey }];
    case 'api':
      return [
        { variable: 'DATABASE_URL', key: 'database-url' },
        { variable: 'REDIS_URL', key: 'redis-url' },
        ...sentinel,
        { variable: 'AUDIT_SIGNING_KEY', key: 'signing-key' },
        // Signs session cookies at /auth: the same on every replica, or a session is valid on one only.
        { variable: 'AUTH_SECRET', key: 'auth-secret' },
        // Seals the destinations' webhook secrets and HEC tokens: the api stores them, the worker
        // opens them to deliver, so both hold the same key (in production the server refuses
        // destinations with a secret without it).
        { variable: 'DELIVERY_SECRET_KEY', key: 'delivery-secret-key' },
        { variable: 'AUDIT_BOOTSTRAP_API_KEY', key: 'bootstrap-api-key', optional: true },
        // Only with an Inngest server (docs/jobs.md): the key is what turns /api/inngest on.
        { variable: 'INNGEST_SIGNING_KEY', key: 'inngest-signing-key', optional: true },
      ];
    case 'worker':
      return [
        { variable: 'DATABASE_URL', key: 'database-url' },
        { variable: 'REDIS_URL', key: 'redis-url' },
        ...sentinel,
        // The public key of the active signing key: the self-audit never needs the private one.
        { variable: 'AUDIT_VERIFIER_KEY', key: 'verifier-key' },
        { variable: 'DELIVERY_SECRET_KEY', key: 'delivery-secret-key' },
        { variable: 'AUDIT_TRUSTED_VERIFIER_KEYS', key: 'trusted-verifier-keys', optional: true },
        // Only with an archive bucket reached by a static access key (retention.s3.staticAccessKey).
        ...(pod.archiveBucket?.staticAccessKey
          ? [
              { variable: 'RETENTION_ARCHIVE_S3_ACCESS_KEY_ID', key: 'retention-s3-access-key-id' },
              { variable: 'RETENTION_ARCHIVE_S3_SECRET_ACCESS_KEY', key: 'retention-s3-secret-access-key' },
            ]
          : []),
      ];
  }
}

/** Name of the Secret volume of a role's container: one per role, so no container sees another's. */
const secretsVolumeName = (role: ServerRole) => `${role}-secrets`;

/**
 * The Secret volume of a role: only the required keys of that role (`items`), read-only, readable
 * by the pod's group alone. A pod holding the migration init container gets two such volumes and
 * each container mounts only its own.
 */
export function serverSecretsVolume(pod: ServerPodOptions, role: ServerRole): k8s.Volume {
  return {
    name: secretsVolumeName(role),
    secret: {
      secretName: pod.secretName,
      // 0440: the pod's fsGroup (the server's gid) reads, nobody writes.
      defaultMode: 0o440,
      items: roleSecrets(pod, role)
        .filter((s) => !s.optional)
        .map((s) => ({ key: s.key, path: s.key })),
    },
  };
}

/** The pod volumes of a server pod whose containers run `roles`. */
export function serverVolumes(pod: ServerPodOptions, roles: readonly ServerRole[]): k8s.Volume[] {
  const identity = roles.includes('worker') ? pod.archiveBucket?.webIdentity : undefined;
  return [
    emptyDirVolume(SERVER_TMP_VOLUME, '256Mi'),
    ...roles.map((role) => serverSecretsVolume(pod, role)),
    // A token for STS alone (its audience), rotated by the kubelet; the pod has no API token.
    ...(identity
      ? [{ name: WEB_IDENTITY_VOLUME, projected: { defaultMode: 0o440, sources: [{ serviceAccountToken: { audience: identity.audience, expirationSeconds: 86_400, path: 'token' } }] } }]
      : []),
  ];
}

/** The worker's archive bucket settings and, with a web identity, the variables the AWS SDK reads for it. */
function archiveEnv(pod: ServerPodOptions, role: ServerRole): k8s.EnvVar[] {
  if (role !== 'worker' || !pod.archiveBucket) return [];
  const identity = pod.archiveBucket.webIdentity;
  return [
    ...pod.archiveBucket.env,
    ...(identity
      ? [
          { name: 'AWS_ROLE_ARN', value: identity.roleArn },
          { name: 'AWS_WEB_IDENTITY_TOKEN_FILE', value: `${WEB_IDENTITY_TOKEN_DIR}/token` },
        ]
      : []),
  ];
}

/**
 * Environment of a server container of `role`: the role, then each required secret as a file
 * (`<NAME>_FILE`, so the value is in no process environment, diagnostic report or child process),
 * and each optional one as an optional `secretKeyRef`. Kubernetes can make one env reference
 * optional but only a whole Secret volume, and the server refuses a `<NAME>_FILE` it cannot read,
 * so a key the operator may leave out of the Secret cannot be a file.
 */
export function serverEnv(pod: ServerPodOptions, role: ServerRole): k8s.EnvVar[] {
  // Only the roles that use Redis: the server refuses REDIS_SENTINELS without REDIS_URL.
  const sentinel = pod.redisSentinel && role !== 'migrate'
    ? [{ name: 'REDIS_SENTINELS', value: pod.redisSentinel.sentinels }, { name: 'REDIS_SENTINEL_MASTER', value: pod.redisSentinel.masterName }]
    : [];
  return [
    { name: 'AUDIT_ROLE', value: role },
    ...sentinel,
    ...archiveEnv(pod, role),
    ...roleSecrets(pod, role).map((s) =>
      s.optional
        ? secretEnv(s.variable, { secretName: pod.secretName, key: s.key }, true)
        : { name: `${s.variable}_FILE`, value: `${SERVER_SECRETS_DIR}/${s.key}` },
    ),
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
    volumeMounts: [
      { name: SERVER_TMP_VOLUME, mountPath: '/tmp' },
      { name: secretsVolumeName(role), mountPath: SERVER_SECRETS_DIR, readOnly: true },
      ...(role === 'worker' && pod.archiveBucket?.webIdentity ? [{ name: WEB_IDENTITY_VOLUME, mountPath: WEB_IDENTITY_TOKEN_DIR, readOnly: true }] : []),
    ],
  });
}

/** The migration container (`AUDIT_ROLE=migrate`): applies pending migrations and exits. */
export function migrateContainer(pod: ServerPodOptions, resources: ContainerResources): k8s.Container {
  return serverContainerBase(pod, 'migrate', resources);
}
