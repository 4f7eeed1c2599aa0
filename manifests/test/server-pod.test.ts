/**
 * What a server pod of each role is built from (server-pod.ts), each option on its own: the
 * environment, the Secret volume holding only the role's required keys (0440), the mounts, and
 * the worker's archive bucket credentials. Synthesized in a bare pod, so the expectations are the
 * exact JSON a cluster would receive. role-secrets.test.ts holds the result against the server's
 * own list of secrets per role; this file pins the shape.
 */
import { Testing } from 'cdk8s';
import { k8s } from 'cdk8s-plus-28';
import type { ServerPodOptions, ServerRole } from '../src/server-pod';
import { migrateContainer, serverContainerBase, serverEnv, serverSecretsVolume, serverVolumes } from '../src/server-pod';
import { RESTRICTED_CONTAINER_CONTEXT } from './support/restricted-contexts';

const POD: ServerPodOptions = {
  image: 'ghcr.io/smedrec/audit-server:1.2.3',
  serviceAccountName: 'sa',
  configMapName: 'cfg',
  secretName: 'sec',
  migrationDatabaseUrlKey: 'owner-url',
};
const SENTINEL: ServerPodOptions = { ...POD, redisSentinel: { sentinels: 's-0:26379,s-1:26379', masterName: 'audit' } };
const BUCKET_ENV = [{ name: 'RETENTION_ARCHIVE_S3_URL', value: 's3://archive' }];
const STATIC_KEY: ServerPodOptions = { ...POD, archiveBucket: { env: BUCKET_ENV, staticAccessKey: true } };
const WEB_IDENTITY: ServerPodOptions = {
  ...POD,
  archiveBucket: { env: BUCKET_ENV, staticAccessKey: false, webIdentity: { roleArn: 'arn:aws:iam::111122223333:role/w', audience: 'sts.example' } },
};
const RESOURCES = {
  cpuRequest: '100m',
  cpuLimit: '500m',
  memoryRequest: '128Mi',
  memoryLimit: '256Mi',
  ephemeralStorageRequest: '32Mi',
  ephemeralStorageLimit: '64Mi',
};

/** A bare pod of `containers` and `volumes`, synthesized. */
function podJson(containers: k8s.Container[], volumes: k8s.Volume[]): any {
  const chart = Testing.chart();
  new k8s.KubePod(chart, 'Pod', { metadata: { name: 'p' }, spec: { containers, volumes } });
  return Testing.synth(chart)[0].spec;
}

const file = (key: string) => `/run/secrets/audit-server/${key}`;
const optionalRef = (name: string, key: string) => ({ name, valueFrom: { secretKeyRef: { name: 'sec', key, optional: true } } });

describe('server environment', () => {
  it('gives each role its role, its required secrets as file paths and its optional ones as optional references, in that order', () => {
    expect(serverEnv(POD, 'api')).toStrictEqual([
      { name: 'AUDIT_ROLE', value: 'api' },
      { name: 'DATABASE_URL_FILE', value: file('database-url') },
      { name: 'REDIS_URL_FILE', value: file('redis-url') },
      { name: 'AUDIT_SIGNING_KEY_FILE', value: file('signing-key') },
      { name: 'AUTH_SECRET_FILE', value: file('auth-secret') },
      { name: 'DELIVERY_SECRET_KEY_FILE', value: file('delivery-secret-key') },
      optionalRef('AUDIT_BOOTSTRAP_API_KEY', 'bootstrap-api-key'),
      optionalRef('INNGEST_SIGNING_KEY', 'inngest-signing-key'),
    ]);
    expect(serverEnv(POD, 'worker')).toStrictEqual([
      { name: 'AUDIT_ROLE', value: 'worker' },
      { name: 'DATABASE_URL_FILE', value: file('database-url') },
      { name: 'REDIS_URL_FILE', value: file('redis-url') },
      { name: 'AUDIT_VERIFIER_KEY_FILE', value: file('verifier-key') },
      { name: 'DELIVERY_SECRET_KEY_FILE', value: file('delivery-secret-key') },
      optionalRef('AUDIT_TRUSTED_VERIFIER_KEYS', 'trusted-verifier-keys'),
    ]);
    // The owner's connection string under the key the construct was given, and nothing else.
    expect(serverEnv(POD, 'migrate')).toStrictEqual([
      { name: 'AUDIT_ROLE', value: 'migrate' },
      { name: 'DATABASE_URL_FILE', value: file('owner-url') },
    ]);
  });

  it('with a Sentinel group, gives api and worker the sentinels, master and sentinel password, and migrate none of it', () => {
    const sentinelVars = [
      { name: 'REDIS_SENTINELS', value: 's-0:26379,s-1:26379' },
      { name: 'REDIS_SENTINEL_MASTER', value: 'audit' },
    ];
    const password = { name: 'REDIS_SENTINEL_PASSWORD_FILE', value: file('redis-sentinel-password') };
    for (const role of ['api', 'worker'] as const) {
      const env = serverEnv(SENTINEL, role);
      expect(env.slice(0, 3)).toStrictEqual([{ name: 'AUDIT_ROLE', value: role }, ...sentinelVars]);
      // The password comes right after the Redis URL.
      expect(env.slice(4, 6)).toStrictEqual([{ name: 'REDIS_URL_FILE', value: file('redis-url') }, password]);
      expect(env).toHaveLength(serverEnv(POD, role).length + 3);
    }
    expect(serverEnv(SENTINEL, 'migrate')).toStrictEqual(serverEnv(POD, 'migrate'));
  });

  it('gives the worker alone the bucket settings, with a static key as two more secret files', () => {
    const keys = [
      { name: 'RETENTION_ARCHIVE_S3_ACCESS_KEY_ID_FILE', value: file('retention-s3-access-key-id') },
      { name: 'RETENTION_ARCHIVE_S3_SECRET_ACCESS_KEY_FILE', value: file('retention-s3-secret-access-key') },
    ];
    const worker = serverEnv(STATIC_KEY, 'worker');
    expect(worker).toStrictEqual([
      { name: 'AUDIT_ROLE', value: 'worker' },
      ...BUCKET_ENV,
      ...serverEnv(POD, 'worker').slice(1),
      ...keys,
    ]);
    for (const role of ['api', 'migrate'] as const) expect(serverEnv(STATIC_KEY, role)).toStrictEqual(serverEnv(POD, role));
  });

  it('with a web identity, gives the worker the role ARN and token file the AWS SDK reads, and no static key', () => {
    expect(serverEnv(WEB_IDENTITY, 'worker')).toStrictEqual([
      { name: 'AUDIT_ROLE', value: 'worker' },
      ...BUCKET_ENV,
      { name: 'AWS_ROLE_ARN', value: 'arn:aws:iam::111122223333:role/w' },
      { name: 'AWS_WEB_IDENTITY_TOKEN_FILE', value: '/var/run/secrets/audit-server/web-identity/token' },
      ...serverEnv(POD, 'worker').slice(1),
    ]);
    for (const role of ['api', 'migrate'] as const) expect(serverEnv(WEB_IDENTITY, role)).toStrictEqual(serverEnv(POD, role));
  });
});

describe('server secret volumes', () => {
  const volume = (name: string, keys: string[]) => ({ name, secret: { secretName: 'sec', defaultMode: 0o440, items: keys.map((key) => ({ key, path: key })) } });

  it('hold only the required keys of one role, readable by the pod group and writable by nobody (0440)', () => {
    expect(serverSecretsVolume(POD, 'api')).toStrictEqual(volume('api-secrets', ['database-url', 'redis-url', 'signing-key', 'auth-secret', 'delivery-secret-key']));
    expect(serverSecretsVolume(POD, 'worker')).toStrictEqual(volume('worker-secrets', ['database-url', 'redis-url', 'verifier-key', 'delivery-secret-key']));
    expect(serverSecretsVolume(POD, 'migrate')).toStrictEqual(volume('migrate-secrets', ['owner-url']));
    expect(serverSecretsVolume(SENTINEL, 'api').secret!.items!.map((i) => i.key)).toEqual(['database-url', 'redis-url', 'redis-sentinel-password', 'signing-key', 'auth-secret', 'delivery-secret-key']);
    expect(serverSecretsVolume(STATIC_KEY, 'worker').secret!.items!.map((i) => i.key)).toEqual([
      'database-url',
      'redis-url',
      'verifier-key',
      'delivery-secret-key',
      'retention-s3-access-key-id',
      'retention-s3-secret-access-key',
    ]);
    expect(serverSecretsVolume(WEB_IDENTITY, 'worker')).toStrictEqual(serverSecretsVolume(POD, 'worker'));
  });

  it('come after a 256Mi /tmp, one per role of the pod, and the web-identity token only where a worker runs', () => {
    const tmp = { name: 'tmp', emptyDir: { sizeLimit: '256Mi' } };
    const token = {
      name: 'web-identity-token',
      projected: { defaultMode: 0o440, sources: [{ serviceAccountToken: { audience: 'sts.example', expirationSeconds: 86400, path: 'token' } }] },
    };
    const names = (pod: ServerPodOptions, roles: ServerRole[]) => serverVolumes(pod, roles).map((v) => v.name);
    expect(podJson([{ name: 'c' }], serverVolumes(POD, ['api', 'migrate'])).volumes).toEqual([tmp, serverSecretsVolume(POD, 'api'), serverSecretsVolume(POD, 'migrate')]);
    expect(podJson([{ name: 'c' }], serverVolumes(WEB_IDENTITY, ['worker', 'migrate'])).volumes).toEqual([
      tmp,
      serverSecretsVolume(WEB_IDENTITY, 'worker'),
      serverSecretsVolume(WEB_IDENTITY, 'migrate'),
      token,
    ]);
    expect(names(WEB_IDENTITY, ['api', 'migrate'])).toEqual(['tmp', 'api-secrets', 'migrate-secrets']);
    expect(names(STATIC_KEY, ['worker'])).toEqual(['tmp', 'worker-secrets']);
  });
});

describe('server containers', () => {
  const base = (role: ServerRole, env: unknown[], mounts: unknown[]) => ({
    name: role,
    image: 'ghcr.io/smedrec/audit-server:1.2.3',
    imagePullPolicy: 'IfNotPresent',
    securityContext: RESTRICTED_CONTAINER_CONTEXT,
    envFrom: [{ configMapRef: { name: 'cfg' } }],
    env,
    resources: {
      requests: { cpu: '100m', memory: '128Mi', 'ephemeral-storage': '32Mi' },
      limits: { cpu: '500m', memory: '256Mi', 'ephemeral-storage': '64Mi' },
    },
    volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }, { name: `${role}-secrets`, mountPath: '/run/secrets/audit-server', readOnly: true }, ...mounts],
  });

  it('are hardened, read the ConfigMap and mount a writable /tmp and their own secrets read-only, nothing else', () => {
    for (const role of ['api', 'worker'] as const) {
      const [c] = podJson([serverContainerBase(POD, role, RESOURCES)], serverVolumes(POD, [role])).containers;
      expect(c).toEqual(base(role, serverEnv(POD, role), []));
    }
  });

  it('run migrations as a container of role migrate: no port, no probe, no hook, so it fits a Job and an init container', () => {
    const [c] = podJson([migrateContainer(POD, RESOURCES)], serverVolumes(POD, ['migrate'])).containers;
    expect(c).toEqual(base('migrate', serverEnv(POD, 'migrate'), []));
  });

  it('mount the web-identity token read-only in the worker only', () => {
    const mount = { name: 'web-identity-token', mountPath: '/var/run/secrets/audit-server/web-identity', readOnly: true };
    const worker = podJson([serverContainerBase(WEB_IDENTITY, 'worker', RESOURCES)], serverVolumes(WEB_IDENTITY, ['worker'])).containers[0];
    expect(worker).toEqual(base('worker', serverEnv(WEB_IDENTITY, 'worker'), [mount]));
    for (const role of ['api', 'migrate'] as const) {
      expect(serverContainerBase(WEB_IDENTITY, role, RESOURCES).volumeMounts).toEqual(serverContainerBase(POD, role, RESOURCES).volumeMounts);
    }
    expect(serverContainerBase(STATIC_KEY, 'worker', RESOURCES).volumeMounts).toEqual(serverContainerBase(POD, 'worker', RESOURCES).volumeMounts);
  });
});
