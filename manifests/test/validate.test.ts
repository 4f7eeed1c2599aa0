/**
 * The validator: the synthesized environments pass, and each rule rejects a known-bad object,
 * naming the object and the rule.
 */
import * as fs from 'node:fs';
import { knownTypes, POLICY_RULES, validateManifests, validateSchema, assertValidManifests, ManifestValidationError } from '../src/validate';
import type { KubeObject, Violation } from '../src/validate';
import { environmentObjects, find } from './support/stacks';

const NS = 'smedrec-audit';

/**
 * Prod with the single-instance data tier: the rules are exercised on every kind the stack can
 * emit — the StatefulSets and the backup CronJob of PgVectorDb and the standalone Redis, beside
 * prod's monitoring objects (prod itself is checked whole below).
 */
function violationsOf(mutate: (objects: KubeObject[]) => void): Violation[] {
  const objects = environmentObjects('prod', { postgresMode: 'single', redisMode: 'standalone' });
  mutate(objects);
  return validateManifests(objects);
}

function expectViolation(violations: Violation[], rule: string, object: string, message: RegExp): void {
  expect(violations).toContainEqual(expect.objectContaining({ rule, object, message: expect.stringMatching(message) }));
}

describe('the synthesized environments', () => {
  it.each(['dev', 'prod'])('%s passes the schema and every policy rule', (env) => {
    expect(validateManifests(environmentObjects(env))).toEqual([]);
  });

  it('knows a schema for every kind the stack emits', () => {
    const objects = [...environmentObjects('prod'), ...environmentObjects('prod', { postgresMode: 'single', redisMode: 'standalone' })];
    const kinds = new Set(objects.map((o) => `${String(o.apiVersion)}/${String(o.kind)}`));
    for (const k of kinds) expect(knownTypes()).toContain(k);
  });
});

describe('schema', () => {
  it('fails when a field has the wrong type (OpenAPI schema from kubernetes-models)', () => {
    const v = violationsOf((o) => {
      find(o, 'Deployment', 'audit-server').spec.template.spec.containers[0].ports[0].containerPort = '3000';
    });
    expectViolation(v, 'schema', `Deployment ${NS}/audit-server`, /spec\/template\/spec\/containers\/0\/ports\/0\/containerPort must be integer/);
  });

  it('fails when a required field is missing', () => {
    const v = violationsOf((o) => {
      delete find(o, 'StatefulSet', 'postgres').spec.selector;
    });
    expectViolation(v, 'schema', `StatefulSet ${NS}/postgres`, /must have required property selector/);
  });

  it('fails for an object of an unknown type', () => {
    expect(validateSchema({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w', namespace: NS } })).toEqual([
      { rule: 'schema', object: `Widget ${NS}/w`, message: 'no schema known for example.com/v1/Widget' },
    ]);
  });

  it('fails for a misspelt field of a custom resource (strict CRD schema)', () => {
    const v = violationsOf((o) => {
      const rule = find(o, 'PrometheusRule', 'audit-server');
      rule.spec.groups[0].rules[0].expresion = rule.spec.groups[0].rules[0].expr;
    });
    expectViolation(v, 'schema', `PrometheusRule ${NS}/audit-server`, /\/spec\/groups\/0\/rules\/0\/expresion is not a known field/);
  });

  it('fails for an Argo CD Application whose directory.recurse is not a boolean', () => {
    const app = {
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'Application',
      metadata: { name: 'a', namespace: 'argocd' },
      spec: { project: 'default', source: { repoURL: 'https://x/y.git', path: 'dist-k8s/prod', directory: { recurse: 'yes' } }, destination: { namespace: NS } },
    };
    expect(validateSchema(app)).toEqual([{ rule: 'schema', object: 'Application argocd/a', message: '/spec/source/directory/recurse must be boolean' }]);
  });
});

describe('policy rules', () => {
  it('namespace: fails when a namespaced object has no namespace and when a Namespace has one', () => {
    const v = violationsOf((o) => {
      delete find(o, 'ConfigMap', 'redis-config').metadata.namespace;
      find(o, 'Namespace', NS).metadata.namespace = NS;
    });
    expectViolation(v, 'namespace', 'ConfigMap redis-config', /metadata.namespace is missing/);
    expectViolation(v, 'namespace', `Namespace ${NS}/${NS}`, /cluster-scoped Namespace must not set metadata.namespace/);
  });

  it('unique-names: fails for two objects with the same kind, namespace and name', () => {
    const v = violationsOf((o) => {
      o.push(JSON.parse(JSON.stringify(find(o, 'ConfigMap', 'redis-config'))));
    });
    expectViolation(v, 'unique-names', `ConfigMap ${NS}/redis-config`, /same kind, namespace and name/);
  });

  it('pss-restricted: fails for privilege escalation, missing seccomp, kept capabilities, root and host access', () => {
    const v = violationsOf((o) => {
      const pod = find(o, 'Deployment', 'audit-server').spec.template.spec;
      const c = pod.containers[0];
      c.securityContext.allowPrivilegeEscalation = true;
      delete c.securityContext.seccompProfile;
      delete pod.securityContext.seccompProfile;
      c.securityContext.capabilities = { drop: ['NET_RAW'], add: ['SYS_ADMIN'] };
      c.securityContext.runAsUser = 0;
      pod.hostNetwork = true;
      pod.volumes.push({ name: 'host', hostPath: { path: '/var/run' } });
    });
    const obj = `Deployment ${NS}/audit-server`;
    expectViolation(v, 'pss-restricted', obj, /container api: securityContext.allowPrivilegeEscalation must be false/);
    expectViolation(v, 'pss-restricted', obj, /container api: seccompProfile.type must be RuntimeDefault or Localhost/);
    expectViolation(v, 'pss-restricted', obj, /container api: capabilities.drop must include ALL/);
    expectViolation(v, 'pss-restricted', obj, /container api: capability SYS_ADMIN may not be added/);
    expectViolation(v, 'pss-restricted', obj, /container api: securityContext.runAsUser must not be 0/);
    expectViolation(v, 'pss-restricted', obj, /spec.hostNetwork must not be true/);
    expectViolation(v, 'pss-restricted', obj, /volume host uses hostPath/);
  });

  it('pss-restricted: fails when neither pod nor container sets runAsNonRoot', () => {
    const v = violationsOf((o) => {
      const pod = find(o, 'CronJob', 'postgres-backup').spec.jobTemplate.spec.template.spec;
      delete pod.securityContext.runAsNonRoot;
      delete pod.containers[0].securityContext.runAsNonRoot;
    });
    expectViolation(v, 'pss-restricted', `CronJob ${NS}/postgres-backup`, /container pg-dump: runAsNonRoot must be true/);
  });

  it('read-only-root-filesystem: fails for a writable root filesystem', () => {
    const v = violationsOf((o) => {
      find(o, 'StatefulSet', 'redis').spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem = false;
    });
    expectViolation(v, 'read-only-root-filesystem', `StatefulSet ${NS}/redis`, /container redis: securityContext.readOnlyRootFilesystem must be true/);
  });

  it('no-token-automount: fails when the pod may mount a service account token', () => {
    const v = violationsOf((o) => {
      delete find(o, 'Deployment', 'otel-collector').spec.template.spec.automountServiceAccountToken;
    });
    expectViolation(v, 'no-token-automount', `Deployment ${NS}/otel-collector`, /automountServiceAccountToken must be false/);
  });

  it('resources: fails when a limit or request is missing, init containers included', () => {
    const v = violationsOf((o) => {
      const job = find(o, 'Job', 'audit-server-migrate-0-1-0');
      delete job.spec.template.spec.containers[0].resources.limits['ephemeral-storage'];
      delete find(o, 'StatefulSet', 'openobserve').spec.template.spec.containers[0].resources.requests.memory;
    });
    expectViolation(v, 'resources', `Job ${NS}/audit-server-migrate-0-1-0`, /container migrate: resources.limits.ephemeral-storage is missing/);
    expectViolation(v, 'resources', `StatefulSet ${NS}/openobserve`, /container openobserve: resources.requests.memory is missing/);
  });

  it('probes: fails when a probe is missing or liveness and readiness check the same thing', () => {
    const v = violationsOf((o) => {
      const api = find(o, 'Deployment', 'audit-server').spec.template.spec.containers[0];
      api.readinessProbe = { ...api.readinessProbe, httpGet: api.livenessProbe.httpGet };
      delete find(o, 'StatefulSet', 'postgres').spec.template.spec.containers[0].livenessProbe;
    });
    expectViolation(v, 'probes', `Deployment ${NS}/audit-server`, /container api: livenessProbe and readinessProbe perform the same check/);
    expectViolation(v, 'probes', `StatefulSet ${NS}/postgres`, /container postgres: livenessProbe is missing/);
  });

  it('probes: does not demand probes from Jobs', () => {
    const v = violationsOf(() => undefined);
    expect(v.filter((x) => x.rule === 'probes')).toEqual([]);
  });

  it('no-latest-tag: fails for rolling tags (latest, pg17, alpine, stable, lts), a missing tag and a malformed digest', () => {
    const hint = 'use a tag with a version number such as 1.2.3, or an @sha256 digest';
    const bad: [string, string, string, string][] = [
      ['Deployment', 'audit-server', 'ghcr.io/smedrec/audit-server:latest', 'tag latest has no version number'],
      ['StatefulSet', 'postgres', 'pgvector/pgvector:pg17', 'tag pg17 has no version number'],
      ['Deployment', 'otel-collector', 'otel/opentelemetry-collector-contrib:stable', 'tag stable has no version number'],
      ['StatefulSet', 'openobserve', 'public.ecr.aws/zinclabs/openobserve:lts', 'tag lts has no version number'],
      ['CronJob', 'postgres-backup', 'registry.example.org:5000/postgres', 'tag missing'],
      ['Job', 'audit-server-migrate-0-1-0', 'ghcr.io/smedrec/audit-server@sha256:1234', 'digest is not sha256 with 64 hex digits'],
    ];
    const v = violationsOf((o) => {
      for (const [kind, name, image] of bad) {
        const spec = find(o, kind, name).spec;
        (kind === 'CronJob' ? spec.jobTemplate.spec.template : spec.template).spec.containers[0].image = image;
      }
      find(o, 'StatefulSet', 'redis').spec.template.spec.containers[0].image = 'redis:alpine';
      find(o, 'StatefulSet', 'redis').spec.template.spec.containers[1].image = 'oliver006/redis_exporter';
    });
    const containerName: Record<string, string> = {
      'audit-server': 'api',
      postgres: 'postgres',
      'otel-collector': 'collector',
      openobserve: 'openobserve',
      'postgres-backup': 'pg-dump',
      'audit-server-migrate-0-1-0': 'migrate',
    };
    for (const [kind, name, image, reason] of bad) {
      expect(v).toContainEqual({
        rule: 'no-latest-tag',
        object: `${kind} ${NS}/${name}`,
        message: `container ${containerName[name]!}: image '${image}' is not pinned (${reason}; ${hint})`,
      });
    }
    expect(v).toContainEqual({
      rule: 'no-latest-tag',
      object: `StatefulSet ${NS}/redis`,
      message: `container redis: image 'redis:alpine' is not pinned (tag alpine has no version number; ${hint})`,
    });
    expect(v).toContainEqual({
      rule: 'no-latest-tag',
      object: `StatefulSet ${NS}/redis`,
      message: `container exporter: image 'oliver006/redis_exporter' is not pinned (tag missing; ${hint})`,
    });
    expect(v.filter((x) => x.rule === 'no-latest-tag')).toHaveLength(bad.length + 2);
  });

  it('no-literal-secrets: fails for Secret data, literal env credentials, credential ConfigMap keys and URLs with passwords', () => {
    const v = violationsOf((o) => {
      o.push({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'leak', namespace: NS }, stringData: { password: 'hunter2' } });
      find(o, 'Deployment', 'audit-server').spec.template.spec.containers[0].env.push({ name: 'AUDIT_SIGNING_KEY', value: 'PRIVATE+KEY+x' });
      // `<NAME>_FILE` passes only when it names a file in a read-only mount (the api's own do).
      find(o, 'Deployment', 'audit-server-worker').spec.template.spec.containers[0].env.push({ name: 'AUDIT_BOOTSTRAP_API_KEY_FILE', value: '/tmp/key' });
      find(o, 'ConfigMap', 'audit-server-config').data.DB_PASSWORD = 'x';
      find(o, 'ConfigMap', 'audit-server-config').data.OTEL_EXPORTER_OTLP_ENDPOINT = 'http://user:pw@collector:4318';
    });
    expectViolation(v, 'no-literal-secrets', `Secret ${NS}/leak`, /literal stringData/);
    expectViolation(v, 'no-literal-secrets', `Deployment ${NS}/audit-server`, /env AUDIT_SIGNING_KEY has a literal value/);
    expectViolation(v, 'no-literal-secrets', `Deployment ${NS}/audit-server-worker`, /env AUDIT_BOOTSTRAP_API_KEY_FILE has a literal value/);
    expect(v.filter((x) => x.rule === 'no-literal-secrets' && /_FILE/.test(x.message))).toHaveLength(1);
    expectViolation(v, 'no-literal-secrets', `ConfigMap ${NS}/audit-server-config`, /key 'DB_PASSWORD' looks like a credential/);
    expectViolation(v, 'no-literal-secrets', `ConfigMap ${NS}/audit-server-config`, /data.OTEL_EXPORTER_OTLP_ENDPOINT contains a URL with a password/);
  });

  it('pdb-per-workload: fails for a Deployment no PDB selects', () => {
    const v = violationsOf((o) => {
      o.splice(o.indexOf(find(o, 'PodDisruptionBudget', 'audit-server-worker')), 1);
    });
    expectViolation(v, 'pdb-per-workload', `Deployment ${NS}/audit-server-worker`, /no PodDisruptionBudget selects its pods/);
  });

  it('network-policy-per-pod: fails for a pod only the default deny selects', () => {
    const v = violationsOf((o) => {
      o.splice(o.indexOf(find(o, 'NetworkPolicy', 'postgres-backup')), 1);
    });
    expectViolation(v, 'network-policy-per-pod', `CronJob ${NS}/postgres-backup`, /no NetworkPolicy with a specific podSelector/);
  });

  it('network-policy-open: fails for an ingress rule without peers, which admits every source', () => {
    const v = violationsOf((o) => {
      delete find(o, 'NetworkPolicy', 'redis').spec.ingress[0].from;
    });
    expectViolation(v, 'network-policy-open', `NetworkPolicy ${NS}/redis`, /spec.ingress\[0\] has no from peers and admits everything/);
  });

  it('selectors-match: fails for a selector that misses its template, a Service that selects nothing and dangling references', () => {
    const v = violationsOf((o) => {
      find(o, 'Deployment', 'audit-server-worker').spec.selector.matchLabels['app.kubernetes.io/component'] = 'wrkr';
      find(o, 'Service', 'redis').spec.selector = { 'app.kubernetes.io/name': 'nothing' };
      find(o, 'Service', 'openobserve').spec.ports[0].targetPort = 'web';
      find(o, 'HorizontalPodAutoscaler', 'audit-server').spec.scaleTargetRef.name = 'gone';
      find(o, 'Ingress', 'audit-server').spec.rules[0].http.paths[0].backend.service.port = { name: 'https' };
      find(o, 'StatefulSet', 'postgres').spec.serviceName = 'postgres';
    });
    expectViolation(v, 'selectors-match', `Deployment ${NS}/audit-server-worker`, /spec.selector.matchLabels is empty or does not match/);
    expectViolation(v, 'selectors-match', `Service ${NS}/redis`, /spec.selector selects no pod template/);
    expectViolation(v, 'selectors-match', `Service ${NS}/openobserve`, /targetPort 'web' is not a named container port/);
    expectViolation(v, 'selectors-match', `HorizontalPodAutoscaler ${NS}/audit-server`, /scaleTargetRef Deployment\/gone does not exist/);
    expectViolation(v, 'selectors-match', `Ingress ${NS}/audit-server`, /backend service 'audit-server' has no port https/);
    expectViolation(v, 'selectors-match', `StatefulSet ${NS}/postgres`, /spec.serviceName 'postgres' is not a headless Service/);
  });

  it('selectors-match: fails for a PDB or NetworkPolicy that selects no pod', () => {
    const v = violationsOf((o) => {
      find(o, 'PodDisruptionBudget', 'redis').spec.selector.matchLabels = { app: 'redis' };
      find(o, 'NetworkPolicy', 'openobserve').spec.podSelector.matchLabels = { app: 'oo' };
    });
    expectViolation(v, 'selectors-match', `PodDisruptionBudget ${NS}/redis`, /spec.selector selects no pod template/);
    expectViolation(v, 'selectors-match', `NetworkPolicy ${NS}/openobserve`, /spec.podSelector selects no pod template/);
  });

  it('hpa-min-replicas: fails below 2, including an omitted minReplicas (defaults to 1)', () => {
    const v = violationsOf((o) => {
      delete find(o, 'HorizontalPodAutoscaler', 'audit-server').spec.minReplicas;
    });
    expectViolation(v, 'hpa-min-replicas', `HorizontalPodAutoscaler ${NS}/audit-server`, /minReplicas 1 is below 2/);
  });

  it('hpa-no-replicas: fails when the Deployment an HPA scales sets replicas', () => {
    const v = violationsOf((o) => {
      find(o, 'Deployment', 'audit-server').spec.replicas = 3;
    });
    expectViolation(v, 'hpa-no-replicas', `Deployment ${NS}/audit-server`, /spec.replicas is set although HorizontalPodAutoscaler smedrec-audit\/audit-server scales it/);
  });

  it('has a test above for every rule it declares', () => {
    // Keeps this file honest when a rule is added.
    const source = fs.readFileSync(__filename, 'utf8');
    for (const rule of Object.keys(POLICY_RULES)) expect(source).toContain(`'${rule}'`);
  });
});

describe('assertValidManifests', () => {
  it('throws one error listing every violation with rule and object', () => {
    const objects = environmentObjects('dev');
    find(objects, 'Deployment', 'audit-server').spec.template.spec.containers[0].image = 'x:latest';
    expect(() => assertValidManifests('dev', objects)).toThrow(ManifestValidationError);
    expect(() => assertValidManifests('dev', objects)).toThrow(
      "dev: 1 manifest violation(s)\n[no-latest-tag] Deployment smedrec-audit-dev/audit-server: container api: image 'x:latest' is not pinned " +
        '(tag latest has no version number; use a tag with a version number such as 1.2.3, or an @sha256 digest)',
    );
  });
});
