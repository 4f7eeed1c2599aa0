// The configuration file `npm run synth` and `cdk8s synth` read the environments from
// (manifests/environments.yaml by default; docs/deploying.md, "Manifests for your cluster"):
// host names, TLS issuer, image, namespaces, replicas, storage classes, Argo CD source and the
// optional parts. Every key is described and checked here, so a bad value stops the synth with
// one line naming the key. Internal to the app in main.ts; not re-exported from index.ts.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Yaml } from 'cdk8s';
import { LogLevel } from './audit-server';
import { PINNED_IMAGE_HINT, unpinnedImageReason } from './image-reference';

/** The file `npm run synth` reads unless `--config FILE` or `AUDIT_MANIFESTS_CONFIG` names another. */
export const DEFAULT_CONFIG_FILE = path.resolve(__dirname, '..', 'environments.yaml');

/** Settings of one environment, validated and defaulted. */
export interface EnvironmentSettings {
  /** Environment name; also the output folder `<out>/<name>`. */
  readonly name: string;
  /** Namespace of the whole stack. */
  readonly namespace: string;
  /** Public host of the api. */
  readonly host: string;
  /** cert-manager ClusterIssuer. */
  readonly clusterIssuer: string;
  /** Browser origins allowed by CORS. */
  readonly corsOrigins: string[];
  /** Server log level. */
  readonly logLevel: LogLevel;
  /** Minimum (HPA) replicas of the api. */
  readonly apiReplicas: number;
  /** HPA maximum. */
  readonly apiMaxReplicas: number;
  /** Worker replicas. */
  readonly workerReplicas: number;
  /** OpenTelemetry Collector replicas. */
  readonly collectorReplicas: number;
  /** Redis maxmemory, MiB. */
  readonly redisMaxMemoryMiB: number;
  /** One Redis, or a Sentinel group (primary, two replicas, three sentinels). */
  readonly redisMode: 'standalone' | 'sentinel';
  /** PostgreSQL data volume, GiB. */
  readonly postgresStorageGiB: number;
  /** `PgVectorDb` (one instance), or `PostgresCluster` (CloudNativePG, three instances). */
  readonly postgresMode: 'single' | 'cluster';
  /** Object store the cluster archives WAL and base backups to (cluster mode). */
  readonly postgresBackupDestination?: string;
  /** Endpoint of a non-AWS S3-compatible store (cluster mode). */
  readonly postgresBackupEndpoint?: string;
  /** StorageClass of each stateful part; undefined = the cluster's default. */
  readonly storageClasses: { readonly postgres?: string; readonly redis?: string; readonly observability?: string };
  /** Image repository of the server. */
  readonly imageRepository: string;
  /** Image tag of the server. */
  readonly imageTag: string;
  /** Deploy the public Ingress. */
  readonly ingress: boolean;
  /** Deploy ElectricSQL. */
  readonly electric: boolean;
  /** Deploy the OpenTelemetry Collector and OpenObserve (the server then exports traces). */
  readonly observability: boolean;
  /** Redis exporter sidecar and prometheus-operator objects. */
  readonly monitoring: boolean;
}

/** Where Argo CD pulls the synthesized folders from. */
export interface ArgoCdSource {
  /** Git repository URL. */
  readonly repoUrl: string;
  /** Branch, tag or commit. */
  readonly targetRevision: string;
  /** Folder of the synthesized output inside the repository (`<path>/<env>`). */
  readonly path: string;
}

/** The whole configuration file, validated and defaulted. */
export interface SynthConfig {
  /** The Argo CD source of every Application. */
  readonly argocd: ArgoCdSource;
  /** The environments, in file order. */
  readonly environments: readonly EnvironmentSettings[];
}

/** A configuration file that is not valid: one line per problem, each naming the key. */
export class SynthConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SynthConfigError';
  }
}

// --- schema ------------------------------------------------------------------------------------

type Check = (value: unknown) => string | undefined;

/** One key of the file: how it is checked and what the documentation says about it. */
interface Field {
  readonly description: string;
  /** Shown in the reference; absent = required. */
  readonly default?: string;
  readonly check?: Check;
  /** Nested keys. */
  readonly fields?: Record<string, Field>;
  /** Keys chosen by the user (environment names), each with these fields. */
  readonly each?: { readonly name: string; readonly check: Check; readonly fields: Record<string, Field> };
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const HOST_NAME = /^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;

const isString = (v: unknown): v is string => typeof v === 'string';
const pattern = (re: RegExp, expected: string): Check => (v) =>
  !isString(v) ? `expected ${expected}, got ${describe(v)}` : re.test(v) ? undefined : `'${v}' is not ${expected}`;
const integer = (min: number, max: number): Check => (v) =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? undefined : `expected an integer from ${min} to ${max}, got ${describe(v)}`;
const boolean: Check = (v) => (typeof v === 'boolean' ? undefined : `expected true or false, got ${describe(v)}`);
const oneOf = (values: readonly string[]): Check => (v) =>
  isString(v) && values.includes(v) ? undefined : `expected one of ${values.join(', ')}, got ${describe(v)}`;
const list = (item: Check): Check => (v) => {
  if (!Array.isArray(v)) return `expected a list, got ${describe(v)}`;
  for (const [i, x] of v.entries()) {
    const problem = item(x);
    if (problem) return `item ${i}: ${problem}`;
  }
  return undefined;
};

/** A value in a message: strings quoted, the rest as YAML would show it. */
function describe(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (isString(v)) return `'${v}'`;
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint' ? String(v) : typeof v;
}

const imageRepository: Check = (v) => {
  const problem = pattern(/^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/, 'an image repository without tag, such as ghcr.io/org/audit-server')(v);
  return problem;
};
const imageTag: Check = (v) => {
  if (!isString(v)) return `expected a tag such as 0.1.0 (quote it in YAML), got ${describe(v)}`;
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(v)) return `'${v}' is not an image tag`;
  const reason = unpinnedImageReason(`image:${v}`);
  return reason === undefined ? undefined : `'${v}': ${reason} (expected ${PINNED_IMAGE_HINT})`;
};
const gitUrl = pattern(/^(https:\/\/[^\s@]+|ssh:\/\/[^\s]+|git@[^\s:]+:[^\s]+)$/, 'a git URL (https://…, ssh://… or git@host:path) without credentials');
const repoPath = pattern(/^(?!\/)(?!.*(^|\/)\.\.?(\/|$))[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/, 'a relative path inside the repository');
const origin = pattern(/^https?:\/\/[^/,\s]+$/, 'an origin (scheme://host[:port], no path)');
const storageClass = (of: string): Field => ({ description: `StorageClass of ${of}`, default: "the cluster's default", check: pattern(DNS_SUBDOMAIN, 'a StorageClass name') });

const ENVIRONMENT_FIELDS: Record<string, Field> = {
  namespace: { description: 'namespace of every object of the environment (created, labelled for Pod Security Standards `restricted`)', check: pattern(DNS_LABEL, 'a DNS label') },
  host: { description: 'public host name of the api (Ingress rule and TLS certificate)', check: pattern(HOST_NAME, 'a fully qualified host name') },
  tlsIssuer: { description: 'cert-manager ClusterIssuer that issues the certificate', check: pattern(DNS_SUBDOMAIN, 'a ClusterIssuer name') },
  corsOrigins: { description: 'browser origins allowed by the server and the Ingress', default: '[] (no CORS)', check: list(origin) },
  logLevel: { description: 'server log level', default: 'info', check: oneOf(Object.values(LogLevel)) },
  replicas: {
    description: 'replica counts',
    fields: {
      api: { description: 'api replicas, the HPA minimum (at least 2 for availability)', check: integer(2, 1000) },
      apiMax: { description: 'HPA maximum of the api (at least `api`)', check: integer(2, 1000) },
      worker: { description: 'worker replicas', check: integer(1, 100) },
      collector: { description: 'OpenTelemetry Collector replicas', default: '2', check: integer(1, 100) },
    },
  },
  redis: {
    description: 'Redis',
    fields: {
      maxMemoryMiB: { description: 'Redis `maxmemory`, MiB (the limit is derived from it)', check: integer(16, 1_048_576) },
      mode: { description: '`standalone` (one node) or `sentinel` (a primary, two replicas and three sentinels the server follows)', default: 'standalone', check: oneOf(['standalone', 'sentinel']) },
    },
  },
  postgres: {
    description: 'PostgreSQL',
    fields: {
      storageGiB: { description: 'size of the data volume (per instance in `cluster` mode), GiB', check: integer(1, 65_536) },
      mode: { description: '`single` (one instance, nightly pg_dump) or `cluster` (CloudNativePG: three instances across zones, WAL archiving; needs the operator)', default: 'single', check: oneOf(['single', 'cluster']) },
      backupDestinationPath: { description: '`cluster` mode: object store URL for WAL and base backups (`s3://bucket/path`); required there', default: 'none', check: pattern(/^(s3|gs|https?):\/\/\S+$/, 'an s3://, gs:// or https:// URL') },
      backupEndpointUrl: { description: '`cluster` mode: endpoint of a non-AWS S3-compatible store', default: 'AWS S3', check: pattern(/^https?:\/\/\S+$/, 'an http(s) URL') },
    },
  },
  storageClasses: {
    description: 'StorageClass per stateful part',
    default: "the cluster's default for each",
    fields: {
      postgres: storageClass('the PostgreSQL data volume and the backup claim'),
      redis: storageClass('the Redis AOF volume'),
      observability: storageClass("OpenObserve's volume"),
    },
  },
  deploy: {
    description: 'which optional parts to deploy',
    default: 'ingress and observability only',
    fields: {
      ingress: { description: 'the public Ingress (with cert-manager TLS)', default: 'true', check: boolean },
      observability: { description: 'OpenTelemetry Collector and OpenObserve; the server exports traces to them', default: 'true', check: boolean },
      electric: { description: 'ElectricSQL beside PostgreSQL', default: 'false', check: boolean },
      monitoring: { description: 'redis_exporter and the prometheus-operator objects in `monitoring/<env>` (needs `observability`)', default: 'false', check: boolean },
    },
  },
};

/** Every key of the file, for validation and for the reference in docs/deploying.md. */
export const CONFIG_SCHEMA: Record<string, Field> = {
  image: {
    description: 'the server image every environment runs',
    fields: {
      repository: { description: 'image repository', default: 'ghcr.io/smedrec/audit-server', check: imageRepository },
      tag: { description: 'image tag: a version (never `latest`); also part of the migration Job name', check: imageTag },
    },
  },
  argocd: {
    description: 'the Git source of the Argo CD Applications in `argocd/`',
    fields: {
      repoURL: { description: 'repository Argo CD pulls the synthesized folders from', check: gitUrl },
      targetRevision: { description: 'branch, tag or commit', default: 'main', check: pattern(/^[^\s]+$/, 'a revision without spaces') },
      path: { description: 'folder of the synthesized output in that repository (`<path>/<env>`)', default: 'dist-k8s', check: repoPath },
    },
  },
  environments: {
    description: 'one entry per environment, in output order',
    each: { name: '<env>', check: pattern(DNS_LABEL, 'a DNS label (it names the output folder)'), fields: ENVIRONMENT_FIELDS },
  },
};

// --- validation --------------------------------------------------------------------------------

/** Checks `value` against `fields`, pushing `key: problem` lines; unknown keys are problems too. */
function checkFields(value: unknown, fields: Record<string, Field>, at: string, problems: string[]): void {
  const where = (k: string) => (at ? `${at}.${k}` : k);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    problems.push(`${at || '(top level)'}: expected a mapping, got ${describe(value)}`);
    return;
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) if (!(key in fields)) problems.push(`${where(key)}: unknown key (expected one of ${Object.keys(fields).join(', ')})`);
  for (const [key, field] of Object.entries(fields)) {
    const v = record[key];
    if (v === undefined || v === null) {
      if (field.default === undefined) problems.push(`${where(key)}: required (${field.description})`);
      continue;
    }
    checkField(v, field, where(key), problems);
  }
}

function checkField(v: unknown, field: Field, at: string, problems: string[]): void {
  if (field.fields) checkFields(v, field.fields, at, problems);
  else if (field.each) {
    const each = field.each;
    if (v === null || typeof v !== 'object' || Array.isArray(v) || Object.keys(v).length === 0) {
      problems.push(`${at}: expected a mapping of at least one environment, got ${describe(v)}`);
      return;
    }
    for (const [name, settings] of Object.entries(v as Record<string, unknown>)) {
      const problem = each.check(name);
      if (problem) problems.push(`${at}.${name}: ${problem}`);
      checkFields(settings, each.fields, `${at}.${name}`, problems);
    }
  } else {
    const problem = field.check?.(v);
    if (problem) problems.push(`${at}: ${problem}`);
  }
}

/** Reads a value the schema has already checked. */
function get<T>(record: unknown, ...keys: string[]): T | undefined {
  let v: unknown = record;
  for (const k of keys) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
  return v === null ? undefined : (v as T | undefined);
}

/**
 * Validates a parsed configuration (the YAML's single document) and applies the defaults.
 * @throws SynthConfigError naming every bad key, prefixed with `source`
 */
export function parseSynthConfig(doc: unknown, source: string): SynthConfig {
  const problems: string[] = [];
  checkFields(doc, CONFIG_SCHEMA, '', problems);
  if (problems.length === 0) {
    // Rules across keys.
    const namespaces = new Map<string, string>();
    for (const [name, env] of Object.entries(get<Record<string, unknown>>(doc, 'environments')!)) {
      const api = get<number>(env, 'replicas', 'api')!;
      const max = get<number>(env, 'replicas', 'apiMax')!;
      if (max < api) problems.push(`environments.${name}.replicas.apiMax: ${max} is below replicas.api (${api})`);
      if (get<boolean>(env, 'deploy', 'monitoring') === true && get<boolean>(env, 'deploy', 'observability') === false) {
        problems.push(`environments.${name}.deploy.monitoring: needs deploy.observability (the prometheus-operator objects watch its collector)`);
      }
      const cluster = get<string>(env, 'postgres', 'mode') === 'cluster';
      if (cluster && get<string>(env, 'postgres', 'backupDestinationPath') === undefined) {
        problems.push(`environments.${name}.postgres.backupDestinationPath: required with postgres.mode cluster (WAL archiving for point-in-time recovery)`);
      }
      if (cluster && get<boolean>(env, 'deploy', 'electric') === true) {
        problems.push(`environments.${name}.deploy.electric: needs postgres.mode single (ElectricSQL is deployed beside PgVectorDb)`);
      }
      const ns = get<string>(env, 'namespace')!;
      if (namespaces.has(ns)) problems.push(`environments.${name}.namespace: '${ns}' is already the namespace of ${namespaces.get(ns)}`);
      namespaces.set(ns, name);
    }
  }
  if (problems.length > 0) throw new SynthConfigError(problems.map((p) => `invalid ${source}: ${p}`).join('\n'));

  const image = { repository: get<string>(doc, 'image', 'repository') ?? 'ghcr.io/smedrec/audit-server', tag: get<string>(doc, 'image', 'tag')! };
  const environments = Object.entries(get<Record<string, unknown>>(doc, 'environments')!).map(
    ([name, env]): EnvironmentSettings => ({
      name,
      namespace: get<string>(env, 'namespace')!,
      host: get<string>(env, 'host')!,
      clusterIssuer: get<string>(env, 'tlsIssuer')!,
      corsOrigins: get<string[]>(env, 'corsOrigins') ?? [],
      logLevel: (get<string>(env, 'logLevel') ?? LogLevel.INFO) as LogLevel,
      apiReplicas: get<number>(env, 'replicas', 'api')!,
      apiMaxReplicas: get<number>(env, 'replicas', 'apiMax')!,
      workerReplicas: get<number>(env, 'replicas', 'worker')!,
      collectorReplicas: get<number>(env, 'replicas', 'collector') ?? 2,
      redisMaxMemoryMiB: get<number>(env, 'redis', 'maxMemoryMiB')!,
      redisMode: get<'standalone' | 'sentinel'>(env, 'redis', 'mode') ?? 'standalone',
      postgresStorageGiB: get<number>(env, 'postgres', 'storageGiB')!,
      postgresMode: get<'single' | 'cluster'>(env, 'postgres', 'mode') ?? 'single',
      postgresBackupDestination: get<string>(env, 'postgres', 'backupDestinationPath'),
      postgresBackupEndpoint: get<string>(env, 'postgres', 'backupEndpointUrl'),
      storageClasses: {
        postgres: get<string>(env, 'storageClasses', 'postgres'),
        redis: get<string>(env, 'storageClasses', 'redis'),
        observability: get<string>(env, 'storageClasses', 'observability'),
      },
      imageRepository: image.repository,
      imageTag: image.tag,
      ingress: get<boolean>(env, 'deploy', 'ingress') ?? true,
      observability: get<boolean>(env, 'deploy', 'observability') ?? true,
      electric: get<boolean>(env, 'deploy', 'electric') ?? false,
      monitoring: get<boolean>(env, 'deploy', 'monitoring') ?? false,
    }),
  );
  return {
    argocd: {
      repoUrl: get<string>(doc, 'argocd', 'repoURL')!,
      targetRevision: get<string>(doc, 'argocd', 'targetRevision') ?? 'main',
      path: get<string>(doc, 'argocd', 'path') ?? 'dist-k8s',
    },
    environments,
  };
}

/**
 * Reads and validates a configuration file.
 * @throws SynthConfigError when it cannot be read or parsed, or a value is bad
 */
export function loadSynthConfig(file: string = DEFAULT_CONFIG_FILE): SynthConfig {
  const relative = path.relative(process.env.INIT_CWD ?? process.cwd(), file);
  const source = relative !== '' && !relative.startsWith('..') ? relative : file;
  if (!fs.existsSync(file)) throw new SynthConfigError(`invalid ${source}: no such file`);
  let docs: unknown[];
  try {
    docs = Yaml.load(file);
  } catch (err) {
    throw new SynthConfigError(`invalid ${source}: not YAML (${(err as Error).message.split('\n')[0]})`);
  }
  const content = docs.filter((d) => d !== null && d !== undefined);
  if (content.length !== 1) throw new SynthConfigError(`invalid ${source}: expected one YAML document, found ${content.length}`);
  return parseSynthConfig(content[0], source);
}

/** The reference table of every key (docs/deploying.md holds exactly these rows; a test checks). */
export function configReference(): string {
  const rows: string[] = ['| Key | Default | Meaning |', '| --- | --- | --- |'];
  const walk = (fields: Record<string, Field>, at: string): void => {
    for (const [key, field] of Object.entries(fields)) {
      const name = at ? `${at}.${key}` : key;
      rows.push(`| \`${name}\` | ${field.default === undefined ? 'required' : field.default} | ${field.description} |`);
      if (field.fields) walk(field.fields, name);
      if (field.each) walk(field.each.fields, `${name}.${field.each.name}`);
    }
  };
  walk(CONFIG_SCHEMA, '');
  return rows.join('\n');
}
