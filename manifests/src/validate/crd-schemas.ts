// Structural schemas for the custom resources the stack emits (prometheus-operator and Argo CD).
// kubernetes-models ships only built-in types, and pulling the operators' CRD packages would
// add heavy dependencies for four kinds, so the fields we use are described here, strictly:
// unknown fields are errors, which catches typos the API server would silently prune.
import type { KubeObject } from './types';

/** Shape of a JSON value. */
type Shape =
  | { readonly t: 'string'; readonly pattern?: RegExp; readonly oneOf?: readonly string[] }
  | { readonly t: 'integer' }
  | { readonly t: 'boolean' }
  | { readonly t: 'stringMap' }
  | { readonly t: 'array'; readonly items: Shape; readonly minItems?: number }
  | { readonly t: 'object'; readonly fields: Readonly<Record<string, Shape>>; readonly required?: readonly string[] };

const str = (pattern?: RegExp): Shape => ({ t: 'string', ...(pattern ? { pattern } : {}) });
const oneOf = (...values: string[]): Shape => ({ t: 'string', oneOf: values });
const int: Shape = { t: 'integer' };
const bool: Shape = { t: 'boolean' };
const stringMap: Shape = { t: 'stringMap' };
const arr = (items: Shape, minItems = 0): Shape => ({ t: 'array', items, minItems });
const obj = (fields: Record<string, Shape>, required: string[] = []): Shape => ({ t: 'object', fields, required });

/** Prometheus duration, e.g. `30s`, `5m`, `1h30m` (https://prometheus.io/docs/prometheus/latest/configuration/configuration/#duration). */
const duration = str(/^(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?$/);
const dnsLabel = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

const objectMeta = obj(
  {
    name: str(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/),
    namespace: str(dnsLabel),
    labels: stringMap,
    annotations: stringMap,
    finalizers: arr(str()),
  },
  ['name', 'namespace'],
);
const labelSelector = obj({ matchLabels: stringMap, matchExpressions: arr(obj({ key: str(), operator: oneOf('In', 'NotIn', 'Exists', 'DoesNotExist'), values: arr(str()) }, ['key', 'operator'])) });
const namespaceSelector = obj({ any: bool, matchNames: arr(str(dnsLabel)) });
const scrapeEndpoint = obj({ port: str(), path: str(/^\//), interval: duration, scrapeTimeout: duration, scheme: oneOf('http', 'https') });

const root = (apiVersion: string, kind: string, spec: Shape): Shape =>
  obj({ apiVersion: oneOf(apiVersion), kind: oneOf(kind), metadata: objectMeta, spec }, ['apiVersion', 'kind', 'metadata', 'spec']);

/** prometheus-operator monitoring.coreos.com/v1 (https://prometheus-operator.dev/docs/api-reference/api/). */
const serviceMonitor = root(
  'monitoring.coreos.com/v1',
  'ServiceMonitor',
  obj({ selector: labelSelector, namespaceSelector, endpoints: arr(scrapeEndpoint, 1), jobLabel: str() }, ['selector', 'endpoints']),
);
const podMonitor = root(
  'monitoring.coreos.com/v1',
  'PodMonitor',
  obj({ selector: labelSelector, namespaceSelector, podMetricsEndpoints: arr(scrapeEndpoint, 1), jobLabel: str() }, ['selector', 'podMetricsEndpoints']),
);
const rule = obj(
  { alert: str(/^[A-Za-z_][A-Za-z0-9_]*$/), record: str(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/), expr: str(/\S/), for: duration, labels: stringMap, annotations: stringMap },
  ['expr'],
);
const prometheusRule = root(
  'monitoring.coreos.com/v1',
  'PrometheusRule',
  obj({ groups: arr(obj({ name: str(/\S/), interval: duration, rules: arr(rule, 1) }, ['name', 'rules']), 1) }, ['groups']),
);

/** prometheus-operator monitoring.coreos.com/v1alpha1 AlertmanagerConfig (the fields AlertRouting uses). */
const matcher = obj({ name: str(/\S/), value: str(), matchType: oneOf('=', '!=', '=~', '!~') }, ['name']);
const secretKey = obj({ name: str(dnsLabel), key: str(/^[-._a-zA-Z0-9]+$/) }, ['name', 'key']);
const amRoute = obj({ receiver: str(/\S/), groupBy: arr(str()), groupWait: duration, groupInterval: duration, repeatInterval: duration, matchers: arr(matcher), continue: bool });
const alertmanagerConfig = root(
  'monitoring.coreos.com/v1alpha1',
  'AlertmanagerConfig',
  obj({
    route: obj({ ...(amRoute as { fields: Record<string, Shape> }).fields, routes: arr(amRoute) }),
    receivers: arr(
      obj(
        {
          name: str(/\S/),
          webhookConfigs: arr(obj({ url: str(), urlSecret: secretKey, sendResolved: bool })),
          emailConfigs: arr(obj({ to: str(), from: str(), smarthost: str(), requireTLS: bool, sendResolved: bool, authUsername: str(), authPassword: secretKey })),
          pagerdutyConfigs: arr(obj({ routingKey: secretKey, serviceKey: secretKey, sendResolved: bool })),
        },
        ['name'],
      ),
    ),
    inhibitRules: arr(obj({ sourceMatch: arr(matcher), targetMatch: arr(matcher), equal: arr(str()) })),
  }),
);

/** CloudNativePG postgresql.cnpg.io/v1 Cluster and ScheduledBackup (the fields PostgresCluster uses). */
const quantity = str(/^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti)?$/);
const resourceList = obj({ cpu: quantity, memory: quantity, 'ephemeral-storage': quantity });
const cnpgCluster = root(
  'postgresql.cnpg.io/v1',
  'Cluster',
  obj(
    {
      instances: int,
      imageName: str(/\S/),
      primaryUpdateStrategy: oneOf('unsupervised', 'supervised'),
      enablePDB: bool,
      postgresql: obj({ parameters: stringMap, synchronous: obj({ method: oneOf('any', 'first'), number: int, dataDurability: oneOf('required', 'preferred') }, ['method', 'number']) }),
      bootstrap: obj({
        initdb: obj({ database: str(/\S/), owner: str(/\S/), secret: obj({ name: str(dnsLabel) }, ['name']), dataChecksums: bool, postInitApplicationSQL: arr(str(/\S/)) }),
      }),
      managed: obj({ roles: arr(obj({ name: str(/\S/), ensure: oneOf('present', 'absent'), login: bool, passwordSecret: obj({ name: str(dnsLabel) }, ['name']) }, ['name'])) }),
      enableSuperuserAccess: bool,
      storage: obj({ size: quantity, storageClass: str(/\S/) }, ['size']),
      resources: obj({ requests: resourceList, limits: resourceList }),
      affinity: obj({ enablePodAntiAffinity: bool, podAntiAffinityType: oneOf('preferred', 'required'), topologyKey: str(/\S/) }),
      monitoring: obj({ enablePodMonitor: bool }),
      backup: obj({
        retentionPolicy: str(/^[1-9][0-9]*[dwm]$/),
        barmanObjectStore: obj(
          {
            destinationPath: str(/\S/),
            endpointURL: str(/^https?:\/\//),
            s3Credentials: obj({ accessKeyId: secretKey, secretAccessKey: secretKey }),
            wal: obj({ compression: oneOf('bzip2', 'gzip', 'lz4', 'snappy', 'xz', 'zstd'), encryption: oneOf('AES256', 'aws:kms') }),
            data: obj({ compression: oneOf('bzip2', 'gzip', 'snappy'), encryption: oneOf('AES256', 'aws:kms') }),
          },
          ['destinationPath'],
        ),
      }),
    },
    ['instances'],
  ),
);
const cnpgScheduledBackup = root(
  'postgresql.cnpg.io/v1',
  'ScheduledBackup',
  obj(
    { schedule: str(/^\S+( \S+){5}$/), backupOwnerReference: oneOf('none', 'self', 'cluster'), cluster: obj({ name: str(dnsLabel) }, ['name']), method: oneOf('barmanObjectStore', 'volumeSnapshot', 'plugin'), immediate: bool },
    ['schedule', 'cluster'],
  ),
);

/** Argo CD argoproj.io/v1alpha1 Application (https://argo-cd.readthedocs.io/en/stable/operator-manual/application.yaml). */
const application = root(
  'argoproj.io/v1alpha1',
  'Application',
  obj(
    {
      project: str(/\S/),
      source: obj(
        {
          repoURL: str(/^(https:\/\/|ssh:\/\/|git@)/),
          targetRevision: str(/\S/),
          path: str(/^[^/]/),
          directory: obj({ recurse: bool, include: str(), exclude: str() }),
        },
        ['repoURL', 'path'],
      ),
      destination: obj({ server: str(/^https:\/\//), name: str(), namespace: str(dnsLabel) }),
      syncPolicy: obj({
        automated: obj({ prune: bool, selfHeal: bool, allowEmpty: bool }),
        syncOptions: arr(str(/^[A-Za-z]+=[A-Za-z0-9-]+$/)),
        retry: obj({ limit: int, backoff: obj({ duration: str(), factor: int, maxDuration: str() }) }),
      }),
      ignoreDifferences: arr(obj({ group: str(), kind: str(), name: str(), namespace: str(), jsonPointers: arr(str(/^\//)) }, ['kind'])),
    },
    ['project', 'source', 'destination'],
  ),
);

function check(value: unknown, shape: Shape, path: string, errors: string[]): void {
  const at = path === '' ? '<root>' : path;
  switch (shape.t) {
    case 'string':
      if (typeof value !== 'string') errors.push(`${at} must be string`);
      else if (shape.pattern && !shape.pattern.test(value)) errors.push(`${at} must match ${String(shape.pattern)} (got '${value}')`);
      else if (shape.oneOf && !shape.oneOf.includes(value)) errors.push(`${at} must be one of ${shape.oneOf.join(', ')} (got '${value}')`);
      return;
    case 'integer':
      if (!Number.isInteger(value)) errors.push(`${at} must be integer`);
      return;
    case 'boolean':
      if (typeof value !== 'boolean') errors.push(`${at} must be boolean`);
      return;
    case 'stringMap':
      if (typeof value !== 'object' || value === null || Array.isArray(value)) errors.push(`${at} must be object`);
      else for (const [k, v] of Object.entries(value)) if (typeof v !== 'string') errors.push(`${at}/${k} must be string`);
      return;
    case 'array':
      if (!Array.isArray(value)) {
        errors.push(`${at} must be array`);
        return;
      }
      if (value.length < (shape.minItems ?? 0)) errors.push(`${at} must have at least ${shape.minItems} item(s)`);
      value.forEach((item, i) => check(item, shape.items, `${path}/${i}`, errors));
      return;
    case 'object': {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        errors.push(`${at} must be object`);
        return;
      }
      const record = value as Record<string, unknown>;
      for (const key of shape.required ?? []) if (record[key] === undefined) errors.push(`${at} must have required property ${key}`);
      for (const [key, v] of Object.entries(record)) {
        const field = shape.fields[key];
        if (!field) errors.push(`${path}/${key} is not a known field`);
        else check(v, field, `${path}/${key}`, errors);
      }
      return;
    }
  }
}

const validator = (shape: Shape) => (o: KubeObject): string[] => {
  const errors: string[] = [];
  check(o, shape, '', errors);
  return errors;
};

/** Structural validators of the custom resources, keyed by `apiVersion/kind`. */
export const CRD_VALIDATORS: Readonly<Record<string, (o: KubeObject) => string[]>> = {
  'monitoring.coreos.com/v1/ServiceMonitor': validator(serviceMonitor),
  'monitoring.coreos.com/v1/PodMonitor': validator(podMonitor),
  'monitoring.coreos.com/v1/PrometheusRule': validator(prometheusRule),
  'monitoring.coreos.com/v1alpha1/AlertmanagerConfig': validator(alertmanagerConfig),
  'postgresql.cnpg.io/v1/Cluster': validator(cnpgCluster),
  'postgresql.cnpg.io/v1/ScheduledBackup': validator(cnpgScheduledBackup),
  'argoproj.io/v1alpha1/Application': validator(application),
};
