/* eslint-disable @typescript-eslint/no-unsafe-return --
   tests walk synthesized manifest JSON, whose shape the assertions themselves check */
/**
 * Each role of the server gets the secrets it uses and no other (docs/deploying.md "Secrets per
 * role"). The expectation is the server's own `ROLE_SECRETS`, and the server's `loadConfig` must
 * accept what each container gets, in production, with every optional secret left out: a role
 * given too much fails the first check, a role given too little the second.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Testing, Yaml } from 'cdk8s';
import { FILE_VARIABLES, loadConfig, ROLE_SECRETS } from '../../server/src/config';
import { AuditServer, MigrationMode } from '../src/audit-server';
import type { AuditServerProps } from '../src/audit-server';
import { listFiles } from '../src/environments';

type Role = keyof typeof ROLE_SECRETS;

/** A container that runs the server in one role, with what its pod gives it. */
interface ServerContainer {
  /** Object and container, for messages. */
  readonly where: string;
  readonly role: Role;
  readonly container: any;
  readonly volumes: any[];
  readonly configMap: Record<string, string>;
}

/** Every server container (`AUDIT_ROLE` set) of a set of objects: containers and init containers. */
function serverContainers(objects: any[]): ServerContainer[] {
  const out: ServerContainer[] = [];
  for (const o of objects) {
    const spec = o.spec?.template?.spec;
    if (!spec) continue;
    for (const container of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) {
      const role = (container.env ?? []).find((e: any) => e.name === 'AUDIT_ROLE')?.value as Role | undefined;
      if (role === undefined) continue;
      const configMaps = (container.envFrom ?? []).map((f: any) => f.configMapRef?.name).filter(Boolean);
      const configMap = Object.assign(
        {},
        ...objects.filter((x) => x.kind === 'ConfigMap' && configMaps.includes(x.metadata.name) && x.metadata.namespace === o.metadata.namespace).map((x) => x.data),
      ) as Record<string, string>;
      out.push({ where: `${o.kind} ${o.metadata.name} container ${container.name}`, role, container, volumes: spec.volumes ?? [], configMap });
    }
  }
  return out;
}

/** A secret a container can read: the Secret key and the server variable it becomes, if any. */
interface Grant {
  readonly key: string;
  readonly variable?: string;
  readonly optional: boolean;
  /** Path of the file, for a `<NAME>_FILE` grant. */
  readonly file?: string;
}

/** What a server container can read of any Secret, or a problem when it can read a Secret whole. */
function grantsOf(c: ServerContainer): { grants: Grant[]; problems: string[] } {
  const problems: string[] = [];
  const grants: Grant[] = [];
  for (const f of c.container.envFrom ?? []) if (f.secretRef) problems.push(`${c.where}: envFrom the whole Secret ${f.secretRef.name}`);
  const mountedFiles = new Map<string, string>(); // path → Secret key
  for (const m of c.container.volumeMounts ?? []) {
    const volume = c.volumes.find((v) => v.name === m.name);
    const sources = volume?.secret ? [volume.secret] : (volume?.projected?.sources ?? []).map((s: any) => s.secret).filter(Boolean);
    for (const source of sources) {
      if (!source.items) problems.push(`${c.where}: mounts the whole Secret ${source.secretName ?? source.name}`);
      if (m.readOnly !== true) problems.push(`${c.where}: secret volume ${m.name} is not mounted read-only`);
      for (const item of source.items ?? []) mountedFiles.set(path.posix.join(m.mountPath, item.path), item.key);
    }
  }
  const used = new Set<string>();
  for (const e of c.container.env ?? []) {
    const ref = e.valueFrom?.secretKeyRef;
    if (ref) grants.push({ key: ref.key, variable: e.name, optional: ref.optional === true });
    else if (typeof e.name === 'string' && e.name.endsWith('_FILE') && mountedFiles.has(e.value)) {
      used.add(e.value);
      grants.push({ key: mountedFiles.get(e.value)!, variable: e.name.slice(0, -'_FILE'.length), optional: false, file: e.value });
    }
  }
  // A mounted key no variable points at is a secret the role holds without using it.
  for (const [file, key] of mountedFiles) if (!used.has(file)) grants.push({ key, optional: false, file });
  return { grants, problems };
}

/** Stand-ins for the Secret values, in the shapes the server's schema demands. */
const STAND_INS: Record<string, string> = {
  DATABASE_URL: 'postgres://audit_runtime@postgres:5432/audit',
  REDIS_URL: 'redis://redis:6379',
  REDIS_SENTINEL_PASSWORD: 'sentinel-stand-in',
  AUDIT_SIGNING_KEY: 'PRIVATE+KEY+stand-in',
  AUDIT_VERIFIER_KEY: 'smedrec.audit+01020304+AQ==',
  AUDIT_TRUSTED_VERIFIER_KEYS: 'old.audit+01020304+AQ==',
  AUDIT_BOOTSTRAP_API_KEY: 'k'.repeat(40),
  AUDIT_WITNESS_URL: 'https://witness.example/add',
  DELIVERY_SECRET_KEY: Buffer.alloc(32, 7).toString('base64'),
  RETENTION_ARCHIVE_S3_ACCESS_KEY_ID: 'AKIAIOSFODNN7EXAMPLE',
  RETENTION_ARCHIVE_S3_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
};

let scratch: string;
beforeAll(() => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'role-secrets-'));
});
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

/**
 * Everything wrong with the secrets of one server container: a secret outside its role's
 * `ROLE_SECRETS`, a key it holds but never reads, a whole Secret, a writable mount — and a
 * production start the server's configuration refuses with every optional secret absent.
 */
function secretProblems(c: ServerContainer): string[] {
  const { grants, problems } = grantsOf(c);
  const allowed: readonly string[] = ROLE_SECRETS[c.role];
  for (const g of grants) {
    if (g.variable === undefined) problems.push(`${c.where}: holds Secret key ${g.key} (${g.file}) that no variable reads`);
    else if (!(FILE_VARIABLES as readonly string[]).includes(g.variable)) problems.push(`${c.where}: Secret key ${g.key} as ${g.variable}, not a secret variable of the server`);
    else if (!allowed.includes(g.variable)) problems.push(`${c.where}: role ${c.role} gets ${g.variable} (Secret key ${g.key}), which it does not use`);
  }
  // Start as the server would, from files written with the stand-ins; optional references absent.
  const env: Record<string, string> = { ...c.configMap };
  for (const e of c.container.env ?? []) if (typeof e.value === 'string' && !e.name.endsWith('_FILE')) env[e.name] = e.value;
  for (const g of grants) {
    if (g.variable === undefined || g.file === undefined || !(g.variable in STAND_INS)) continue;
    const file = path.join(scratch, `${c.role}-${g.variable}`);
    fs.writeFileSync(file, `${STAND_INS[g.variable]}\n`);
    env[`${g.variable}_FILE`] = file;
  }
  try {
    const config = loadConfig(env);
    if (config.NODE_ENV !== 'production' || config.AUDIT_ROLE !== c.role) problems.push(`${c.where}: not a production ${c.role}`);
  } catch (err) {
    problems.push(`${c.where}: ${(err as Error).message}`);
  }
  return problems;
}

const synth = (migrations: MigrationMode, props: AuditServerProps = {}): any[] => {
  const chart = Testing.chart();
  new AuditServer(chart, 'AuditServer', { migrations, ...props });
  return Testing.synth(chart);
};
const SENTINEL: AuditServerProps = { redisSentinel: { sentinels: ['redis-sentinel-0.redis-sentinel-headless:26379', 'redis-sentinel-1.redis-sentinel-headless:26379'] } };
const committed = path.resolve(__dirname, '..', '..', 'dist-k8s');
const distObjects = (env: string): any[] =>
  listFiles(path.join(committed, env)).flatMap((f) => Yaml.load(path.join(committed, env, f)).filter((d: unknown) => d !== null));

describe('secrets per role', () => {
  const cases: Array<[string, any[]]> = [
    ...Object.values(MigrationMode).map((m): [string, any[]] => [`AuditServer, migrations ${m}`, synth(m)]),
    ['AuditServer following a Redis Sentinel group', synth(MigrationMode.INIT_CONTAINER, SENTINEL)],
    ['AuditServer archiving to a bucket with a static key', synth(MigrationMode.INIT_CONTAINER, { retention: { s3: { bucketUrl: 's3://audit-archive/prod', region: 'us-east-1', staticAccessKey: true } } })],
    ...['dev', 'prod'].map((env): [string, any[]] => [`dist-k8s/${env}`, distObjects(env)]),
  ];

  it.each(cases)('%s: every role gets exactly what it uses, and starts with it in production', (_name, objects) => {
    const containers = serverContainers(objects);
    expect(new Set(containers.map((c) => c.role))).toEqual(new Set(['api', 'worker', 'migrate']));
    expect(containers.flatMap(secretProblems)).toEqual([]);
  });

  it('with a Sentinel group, api and worker read the sentinels\' password as a file and get the sentinels (migrate does not)', () => {
    const objects = synth(MigrationMode.JOB_PRE_SYNC, SENTINEL);
    const containers = serverContainers(objects).filter((c) => c.role !== 'migrate');
    expect(containers.map((c) => c.role).sort()).toEqual(['api', 'worker']);
    for (const c of containers) {
      expect(grantsOf(c).grants).toContainEqual({ key: 'redis-sentinel-password', variable: 'REDIS_SENTINEL_PASSWORD', optional: false, file: '/run/secrets/audit-server/redis-sentinel-password' });
      expect(c.container.env.slice(0, 3)).toEqual([
        { name: 'AUDIT_ROLE', value: c.role },
        { name: 'REDIS_SENTINELS', value: SENTINEL.redisSentinel!.sentinels.join(',') },
        { name: 'REDIS_SENTINEL_MASTER', value: 'audit' },
      ]);
    }
    expect(grantsOf(serverContainers(objects).find((c) => c.role === 'migrate')!).grants.map((g) => g.variable)).toEqual(['DATABASE_URL']);
  });

  it('migrate reads only its connection string, as a file', () => {
    const job = synth(MigrationMode.JOB_PRE_SYNC).find((o) => o.kind === 'Job');
    const [migrate] = serverContainers([job]);
    expect(grantsOf(migrate!).grants).toEqual([
      { key: 'migration-database-url', variable: 'DATABASE_URL', optional: false, file: '/run/secrets/audit-server/migration-database-url' },
    ]);
  });

  it('flags a role given a secret it does not use, a key nobody reads, a whole Secret, or too little', () => {
    const [api, worker] = ['audit-server', 'audit-server-worker'].map(
      (name) => serverContainers(synth(MigrationMode.JOB_PRE_SYNC).filter((o) => o.kind !== 'Deployment' || o.metadata.name === name))
        .find((c) => c.role !== 'migrate')!,
    );
    const withEnv = (c: ServerContainer, env: any[]): ServerContainer => ({ ...c, container: { ...c.container, env: [...c.container.env, ...env] } });
    const signingKey = { name: 'AUDIT_SIGNING_KEY', valueFrom: { secretKeyRef: { name: 'audit-server-secrets', key: 'signing-key' } } };
    expect(secretProblems(withEnv(worker!, [signingKey]))).toEqual([
      'Deployment audit-server-worker container worker: role worker gets AUDIT_SIGNING_KEY (Secret key signing-key), which it does not use',
    ]);
    // The same volume with one more key the worker never reads.
    const volumes = worker!.volumes.map((v) => (v.secret ? { ...v, secret: { ...v.secret, items: [...v.secret.items, { key: 'signing-key', path: 'signing-key' }] } } : v));
    expect(secretProblems({ ...worker!, volumes })).toEqual([
      'Deployment audit-server-worker container worker: holds Secret key signing-key (/run/secrets/audit-server/signing-key) that no variable reads',
    ]);
    const whole = worker!.volumes.map((v) => (v.secret ? { ...v, secret: { secretName: v.secret.secretName } } : v));
    expect(secretProblems({ ...worker!, volumes: whole })[0]).toBe('Deployment audit-server-worker container worker: mounts the whole Secret audit-server-secrets');
    const envFrom = { ...api!, container: { ...api!.container, envFrom: [...api!.container.envFrom, { secretRef: { name: 'audit-server-secrets' } }] } };
    expect(secretProblems(envFrom)).toEqual(['Deployment audit-server container api: envFrom the whole Secret audit-server-secrets']);
    // Too little: an api without its signing key cannot start in production.
    const noKey = { ...api!, container: { ...api!.container, env: api!.container.env.filter((e: any) => e.name !== 'AUDIT_SIGNING_KEY_FILE') } };
    expect(secretProblems(noKey)).toEqual([
      'Deployment audit-server container api: holds Secret key signing-key (/run/secrets/audit-server/signing-key) that no variable reads',
      'Deployment audit-server container api: invalid configuration: AUDIT_SIGNING_KEY: required when NODE_ENV=production and AUDIT_ROLE=api',
    ]);
  });
});
