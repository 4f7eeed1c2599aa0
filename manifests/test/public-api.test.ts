/**
 * The library's public surface follows the rules for construct libraries in docs/architecture.md
 * §6: jsii-friendly exports, readonly props without mapped types, and a
 * documented `@default` on every optional prop.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as api from '../src';

const srcDir = path.resolve(__dirname, '..', 'src');
const publicFiles = ['secret-reference.ts', 'network-peer.ts', 'container-resources.ts', 'audit-server.ts', 'redis-cache.ts', 'pg-vector-db.ts', 'postgres-cluster.ts', 'observability-stack.ts', 'alert-routing.ts', 'argo-cd-application.ts'];

/** Exported interfaces of a file: name and body. */
function interfaces(file: string): { name: string; body: string }[] {
  const text = fs.readFileSync(path.join(srcDir, file), 'utf8');
  return [...text.matchAll(/^export interface (\w+) \{\n([\s\S]*?)^\}/gm)].map((m) => ({ name: m[1]!, body: m[2]! }));
}

describe('public API', () => {
  it('exports only classes and enums at run time (no free functions or constants, which jsii cannot carry)', () => {
    for (const [name, value] of Object.entries(api)) {
      const isClass = typeof value === 'function' && /^class\b/.test(Function.prototype.toString.call(value));
      const isEnum = typeof value === 'object' && value !== null && Object.values(value).every((v) => typeof v === 'string');
      expect({ name, ok: isClass || isEnum }).toEqual({ name, ok: true });
    }
  });

  it('offers former constants and helpers as static members', () => {
    expect([api.AuditServer.PORT, api.RedisCache.PORT, api.PgVectorDb.PORT]).toEqual([3000, 6379, 5432]);
    expect(api.AuditServer.INGRESS_PATHS).toEqual(['/api', '/trpc', '/graphql', '/auth', '/health', '/ready', '/']);
    expect(api.AuditServer.DEFAULT_IMAGE_TAG).toMatch(/^\d+\.\d+\.\d+/);
    expect(api.ObservabilityStack.alertRules('ns', 'svc').length).toBeGreaterThan(5);
    expect(api.PgVectorDb.initRolesScript('m', 'a')).toContain('CREATE ROLE :"app" LOGIN');
    expect(Object.keys(api.ManifestValidator.RULES)).toContain('pss-restricted');
  });

  it.each(publicFiles)('%s: every interface property is readonly, typed without mapped types', (file) => {
    expect(interfaces(file).length).toBeGreaterThan(0);
    for (const { name, body } of interfaces(file)) {
      const props = body.split('\n').filter((l) => /^ {2}\w/.test(l));
      expect({ name, props: props.length > 0 }).toEqual({ name, props: true });
      for (const line of props) {
        expect({ name, line, readonly: line.trimStart().startsWith('readonly ') }).toEqual({ name, line, readonly: true });
        expect({ name, line, mapped: /\b(Record|Partial|Pick|Omit|Readonly|Required)</.test(line) }).toEqual({ name, line, mapped: false });
      }
    }
  });

  it('finds the optional props it checks', () => {
    const optional = interfaces('audit-server.ts').flatMap(({ body }) => [...body.matchAll(/readonly (\w+)\?:/g)].map((m) => m[1]));
    expect(optional).toEqual(expect.arrayContaining(['namespace', 'imageTag', 'migrations', 'logLevel', 'requestsPerMinutePerClient']));
  });

  it.each(publicFiles)('%s: every prop that sets a Kubernetes field links to its kubernetes.io documentation (@see)', (file) => {
    // Props named after what they configure in Kubernetes: names and namespaces, images, Secrets,
    // replicas, autoscaling, migrations (a Job), Ingress, resources, NetworkPolicy peers,
    // lifecycle hooks and storage.
    const kubernetesField =
      /^(name|namespace|destinationNamespace|createNamespace|image|imageTag|imageRepository|\w+Image|\w*Secret|\w*SecretName|replicas|\w+Replicas|autoscaling\w*|migrations|ingress\w*|host|className|tlsSecretName|resources|\w+Resources|database|redis|otlpCollector|metricsScraper|clients|telemetrySources|openObserveClients|preStopDelaySeconds|storageGiB|storageClassName|shmSizeMiB|backupEnabled|backupSchedule|backupRetentionDays|backupStorageGiB)$/;
    for (const { name, body } of interfaces(file).filter((i) => /(Props|Options)$/.test(i.name))) {
      for (const m of body.matchAll(/(?:\/\*\*((?:(?!\*\/)[\s\S])*?)\*\/|\/\/[^\n]*)\n\s+readonly (\w+)\??:/g)) {
        if (!kubernetesField.test(m[2]!)) continue;
        const see = /@see https:\/\/(kubernetes\.io\/docs|kubernetes\.github\.io\/ingress-nginx)\/\S+/.test(m[1] ?? '');
        expect({ prop: `${name}.${m[2]}`, see }).toEqual({ prop: `${name}.${m[2]}`, see: true });
      }
    }
  });

  it('checks the @see links of the props that matter (the pattern above matches them)', () => {
    const props = publicFiles.flatMap((f) => interfaces(f)).flatMap(({ body }) => [...body.matchAll(/@see https:\/\/kubernetes\.io\S+\n\s+\*\/\n\s+readonly (\w+)/g)].map((m) => m[1]));
    expect(props).toEqual(expect.arrayContaining(['namespace', 'replicas', 'apiResources', 'storageClassName', 'database', 'preStopDelaySeconds', 'imageTag']));
  });

  it.each(publicFiles)('%s: every optional prop documents its @default', (file) => {
    for (const { name, body } of interfaces(file)) {
      // Each member is a TSDoc block followed by its declaration.
      for (const m of body.matchAll(/\/\*\*([\s\S]*?)\*\/\n\s+readonly (\w+)\?:/g)) {
        expect({ prop: `${name}.${m[2]}`, hasDefault: /@default (?!undefined)\S/.test(m[1]!) }).toEqual({ prop: `${name}.${m[2]}`, hasDefault: true });
      }
      const optional = [...body.matchAll(/readonly (\w+)\?:/g)].length;
      const documented = [...body.matchAll(/\/\*\*[\s\S]*?\*\/\n\s+readonly \w+\?:/g)].length;
      expect({ name, optional }).toEqual({ name, optional: documented });
    }
  });
});
