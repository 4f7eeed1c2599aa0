/* eslint-disable @typescript-eslint/no-unsafe-return --
   tests walk synthesized manifest JSON, whose shape the assertions themselves check */
/**
 * dist-k8s/ is the GitOps source: it must be exactly what a fresh synth writes, ordered so that
 * `kubectl apply -f dist-k8s/<env> --recursive` works on an empty cluster.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Yaml } from 'cdk8s';
import { ENVIRONMENTS, EXAMPLE_CONFIG, listFiles, synthesizeAll } from '../src/environments';
import { AUDIT_SERVER_VERSION } from '../src/version';

const repoRoot = path.resolve(__dirname, '..', '..');
const committed = path.join(repoRoot, 'dist-k8s');
const fresh = fs.mkdtempSync(path.join(os.tmpdir(), 'dist-k8s-'));
let summary: ReturnType<typeof synthesizeAll>;

beforeAll(() => {
  summary = synthesizeAll(fresh);
});
afterAll(() => fs.rmSync(fresh, { recursive: true, force: true }));

/** Documents of a YAML file, in order. */
const load = (file: string): any[] => Yaml.load(file).filter((d: unknown) => d !== null);

describe('dist-k8s', () => {
  it('equals a fresh synth, file for file and byte for byte (run `npm run synth` to update)', () => {
    expect(listFiles(committed)).toEqual(summary.files);
    for (const file of summary.files) {
      expect({ file, content: fs.readFileSync(path.join(committed, file), 'utf8') }).toEqual({
        file,
        content: fs.readFileSync(path.join(fresh, file), 'utf8'),
      });
    }
  });

  it('writes a folder per environment, monitoring CRs apart, and the Argo CD Applications', () => {
    expect(summary.files).toEqual([
      'README.md',
      'argocd/kustomization.yaml',
      'argocd/smedrec-audit-dev.k8s.yaml',
      'argocd/smedrec-audit-prod.k8s.yaml',
      'dev/0000-audit-server.k8s.yaml',
      'dev/0001-data.k8s.yaml',
      'dev/0002-observability.k8s.yaml',
      'dev/Kustomization',
      'monitoring/prod/Kustomization',
      'monitoring/prod/prometheus-operator.k8s.yaml',
      'prod/0000-audit-server.k8s.yaml',
      'prod/0001-data.k8s.yaml',
      'prod/0002-observability.k8s.yaml',
      'prod/Kustomization',
    ]);
  });

  it.each(ENVIRONMENTS.map((e) => [e.name, e.namespace]))(
    '%s: the Namespace is the first object kubectl applies and every other object lives in it',
    (env, namespace) => {
      // kubectl walks the directory in lexical order and applies each file's documents in order.
      // What `kubectl apply -f --recursive` reads: the .yaml files (the Kustomization is skipped).
      const docs = listFiles(path.join(fresh, env)).filter((f) => f.endsWith('.yaml')).flatMap((f) => load(path.join(fresh, env, f)));
      expect(docs[0]).toMatchObject({ kind: 'Namespace', metadata: { name: namespace } });
      expect(docs.slice(1).every((d) => d.metadata.namespace === namespace)).toBe(true);
      // No custom resource in an environment folder (an empty cluster has no CRDs), except the
      // CloudNativePG objects of an environment whose PostgreSQL is a cluster: that operator is
      // a documented prerequisite of the environment (docs/deploying.md).
      const cnpg = ENVIRONMENTS.find((e) => e.name === env)!.postgresMode === 'cluster';
      const custom = docs.filter((d) => !/^(v1|apps\/v1|batch\/v1|policy\/v1|autoscaling\/v2|networking\.k8s\.io\/v1)$/.test(d.apiVersion));
      expect(custom.map((d) => `${d.apiVersion} ${d.kind}`)).toEqual(cnpg ? ['postgresql.cnpg.io/v1 Cluster', 'postgresql.cnpg.io/v1 ScheduledBackup'] : []);
    },
  );

  it('keeps kustomization.yaml out of every Argo CD directory source; its Kustomization file has no .yaml extension', () => {
    // A kustomization.yaml would be read by Argo CD's directory source and `kubectl apply -f` as
    // an object; `Kustomization` is a name kustomize accepts and both of them skip.
    const sources = ['dev', 'prod', 'monitoring/prod'];
    for (const dir of sources) {
      expect(listFiles(path.join(fresh, dir)).filter((f) => !/\.k8s\.yaml$/.test(f))).toEqual(['Kustomization']);
      const k = load(path.join(fresh, dir, 'Kustomization'))[0];
      expect(k).toEqual({ apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', resources: listFiles(path.join(fresh, dir)).filter((f) => f.endsWith('.yaml')) });
    }
    const kustomization = load(path.join(fresh, 'argocd', 'kustomization.yaml'))[0];
    expect(kustomization.resources).toEqual(['smedrec-audit-dev.k8s.yaml', 'smedrec-audit-prod.k8s.yaml']);
  });

  it('declares an Argo CD Application per folder: directory source, recurse, automated prune and self-heal', () => {
    const apps = ['dev', 'prod'].flatMap((env) => load(path.join(fresh, 'argocd', `smedrec-audit-${env}.k8s.yaml`)));
    expect(apps.map((a) => [a.metadata.name, a.spec.source.path, a.spec.destination.namespace])).toEqual([
      ['smedrec-audit-dev', 'dist-k8s/dev', 'smedrec-audit-dev'],
      ['smedrec-audit-prod', 'dist-k8s/prod', 'smedrec-audit'],
      ['smedrec-audit-prod-monitoring', 'dist-k8s/monitoring/prod', 'smedrec-audit'],
    ]);
    for (const app of apps) {
      expect(app).toMatchObject({
        apiVersion: 'argoproj.io/v1alpha1',
        kind: 'Application',
        metadata: { namespace: 'argocd' },
        spec: {
          source: { directory: { recurse: true }, targetRevision: 'main' },
          syncPolicy: { automated: { prune: true, selfHeal: true } },
        },
      });
    }
  });

  it('deploys prod with failover in the data tier and dev with single instances', () => {
    const objects = (env: string) => listFiles(path.join(fresh, env)).filter((f) => f.endsWith('.yaml')).flatMap((f) => load(path.join(fresh, env, f)));
    const prod = objects('prod');
    const dev = objects('dev');
    const kinds = (docs: any[], names: string[]) => docs.filter((d) => names.includes(d.metadata.name) && /^(StatefulSet|Cluster)$/.test(d.kind)).map((d) => [d.kind, d.metadata.name, d.spec.replicas ?? d.spec.instances]);
    expect(kinds(prod, ['postgres', 'redis', 'redis-sentinel'])).toEqual([
      ['StatefulSet', 'redis', 3],
      ['StatefulSet', 'redis-sentinel', 3],
      ['Cluster', 'postgres', 3],
    ]);
    expect(kinds(dev, ['postgres', 'redis', 'redis-sentinel'])).toEqual([
      ['StatefulSet', 'redis', 1],
      ['StatefulSet', 'postgres', 1],
    ]);
    // The prod server follows the sentinels; dev's has one Redis.
    const api = (docs: any[]) => docs.find((d) => d.kind === 'Deployment' && d.metadata.name === 'audit-server').spec.template.spec.containers[0].env.map((e: any) => e.name);
    expect(api(prod)).toEqual(expect.arrayContaining(['REDIS_SENTINELS', 'REDIS_SENTINEL_MASTER', 'REDIS_SENTINEL_PASSWORD_FILE']));
    expect(api(dev).filter((n: string) => n.startsWith('REDIS_SENTINEL'))).toEqual([]);
  });

  it('orders Argo CD sync waves: namespace, configuration, data tier, migrations, app, edge', () => {
    const docs = listFiles(path.join(fresh, 'prod')).flatMap((f) => load(path.join(fresh, 'prod', f)));
    const wave = (kind: string, name: string) =>
      Number(docs.find((d) => d.kind === kind && d.metadata.name === name).metadata.annotations['argocd.argoproj.io/sync-wave']);
    const order = [
      wave('Namespace', 'smedrec-audit'),
      wave('ConfigMap', 'audit-server-config'),
      wave('Cluster', 'postgres'),
      wave('Job', `audit-server-migrate-${AUDIT_SERVER_VERSION.replace(/\./g, '-')}`),
      wave('Deployment', 'audit-server'),
      wave('Ingress', 'audit-server'),
    ];
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(new Set(order).size).toBe(order.length);
  });

  it('pins the default image tag to the server package version', () => {
    const server = JSON.parse(fs.readFileSync(path.join(repoRoot, 'server', 'package.json'), 'utf8')) as { version: string };
    expect(AUDIT_SERVER_VERSION).toBe(server.version);
  });

  it('is what cdk8s.yaml points the CLI at', () => {
    const config = load(path.join(repoRoot, 'cdk8s.yaml'))[0];
    expect(config).toEqual({ language: 'typescript', app: 'npx tsx manifests/main.ts', output: 'dist-k8s' });
    // No local cdk8s CLI: the `cdk8s` package is the library and has no `bin`, so `npx cdk8s synth`
    // cannot run; the READMEs name `cdk8s synth` (a global cdk8s-cli) or `npm run synth`.
    expect((JSON.parse(fs.readFileSync(require.resolve('cdk8s/package.json'), 'utf8')) as { bin?: unknown }).bin).toBeUndefined();
    for (const readme of ['README.md', 'manifests/README.md', 'docs/deploying.md']) {
      const commands = [...fs.readFileSync(path.join(repoRoot, readme), 'utf8').matchAll(/```(?:sh|bash)\n([\s\S]*?)```/g)].flatMap((m) => m[1]!.split('\n'));
      expect(commands.filter((c) => /\bnpx cdk8s\b/.test(c))).toEqual([]);
    }
  });

  it('is written by main.ts into CDK8S_OUTDIR, the way `cdk8s synth` runs it', () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'cdk8s-cli-'));
    try {
      const r = spawnSync(process.execPath, ['--import', 'tsx', 'main.ts'], {
        cwd: path.join(repoRoot, 'manifests'),
        env: { ...process.env, CDK8S_OUTDIR: out },
        encoding: 'utf8',
        timeout: 120_000,
      });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/^synthesized 14 files into .* \(dev: \d+ objects, prod: \d+ objects, argocd: 3 objects\)\n$/);
      expect(listFiles(out)).toEqual(summary.files);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });

  it('writes nothing, and leaves the previous output, when an environment is invalid', () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'dist-invalid-'));
    try {
      fs.writeFileSync(path.join(out, 'previous.yaml'), 'kept');
      // A value the configuration file's schema cannot see: the constructs' own checks.
      const bad = { ...EXAMPLE_CONFIG, environments: [{ ...ENVIRONMENTS[0]!, name: 'bad', apiReplicas: 1 }] };
      expect(() => synthesizeAll(out, bad)).toThrow('invalid replicas: 1 (the HPA minimum must be >= 2 for availability)');
      expect(listFiles(out)).toEqual(['previous.yaml']);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });

  it('refuses to empty a folder that is not an output folder', () => {
    expect(() => synthesizeAll(path.join(repoRoot, 'manifests'))).toThrow(/^refusing to empty '.*manifests': it is not an output folder$/);
  });
});
