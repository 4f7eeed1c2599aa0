/* eslint-disable @typescript-eslint/no-unsafe-return --
   tests walk synthesized manifest JSON and parsed YAML, whose shape the assertions check */
/**
 * The configuration file of the synth (manifests/environments.yaml): the committed example is
 * what dist-k8s/ is made from, every key is described in docs/deploying.md, a bad value stops
 * the synth naming the key, and another cluster's values reach every object they name.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Yaml } from 'cdk8s';
import { configReference, DEFAULT_CONFIG_FILE, parseSynthConfig, SynthConfigError } from '../src/environment-config';
import { appObjects, buildArgoCd, buildEnvironment, listFiles } from '../src/environments';

const repoRoot = path.resolve(__dirname, '..', '..');
const example = (): any => Yaml.load(DEFAULT_CONFIG_FILE)[0];
const parse = (doc: unknown) => parseSynthConfig(doc, 'test.yaml');
/** The example with one change applied to its parsed YAML. */
const changed = (edit: (doc: any) => void): any => {
  const doc = example();
  edit(doc);
  return doc;
};

describe('environments.yaml', () => {
  it('is documented key for key in docs/deploying.md', () => {
    const page = fs.readFileSync(path.join(repoRoot, 'docs', 'deploying.md'), 'utf8');
    const marker = '<!-- environments.yaml reference: generated from manifests/src/environment-config.ts, checked by manifests/test/environment-config.test.ts -->\n';
    expect(page).toContain(marker);
    const table = page.slice(page.indexOf(marker) + marker.length).split('\n\n')[0];
    expect(table).toBe(configReference());
  });

  it.each<[string, (doc: any) => void, string]>([
    ['a namespace that is not a DNS label', (d) => (d.environments.prod.namespace = 'Smedrec_Audit'), "environments.prod.namespace: 'Smedrec_Audit' is not a DNS label"],
    ['a host with a scheme', (d) => (d.environments.dev.host = 'https://api.example.org'), "environments.dev.host: 'https://api.example.org' is not a fully qualified host name"],
    ['a missing TLS issuer', (d) => delete d.environments.prod.tlsIssuer, 'environments.prod.tlsIssuer: required (cert-manager ClusterIssuer that issues the certificate)'],
    ['the latest tag', (d) => (d.image.tag = 'latest'), "image.tag: 'latest': tag latest has no version number"],
    ['a tag YAML reads as a number', (d) => (d.image.tag = 1.2), 'image.tag: expected a tag such as 0.1.0 (quote it in YAML), got 1.2'],
    ['an image repository with a tag', (d) => (d.image.repository = 'ghcr.io/x/audit:1.0'), "image.repository: 'ghcr.io/x/audit:1.0' is not an image repository"],
    ['one api replica', (d) => (d.environments.prod.replicas.api = 1), 'environments.prod.replicas.api: expected an integer from 2 to 1000, got 1'],
    ['an HPA maximum below the minimum', (d) => (d.environments.prod.replicas.apiMax = 2), 'environments.prod.replicas.apiMax: 2 is below replicas.api (3)'],
    ['a string where a number belongs', (d) => (d.environments.dev.redis.maxMemoryMiB = '256Mi'), "environments.dev.redis.maxMemoryMiB: expected an integer from 16 to 1048576, got '256Mi'"],
    ['a PostgreSQL cluster without a backup destination', (d) => delete d.environments.prod.postgres.backupDestinationPath, 'environments.prod.postgres.backupDestinationPath: required with postgres.mode cluster (WAL archiving for point-in-time recovery)'],
    ['ElectricSQL beside a PostgreSQL cluster', (d) => (d.environments.prod.deploy.electric = true), 'environments.prod.deploy.electric: needs postgres.mode single (ElectricSQL is deployed beside PgVectorDb)'],
    ['an unknown Redis mode', (d) => (d.environments.dev.redis.mode = 'cluster'), "environments.dev.redis.mode: expected one of standalone, sentinel, got 'cluster'"],
    ['a bad storage class', (d) => (d.environments.prod.storageClasses = { postgres: 'Fast SSD' }), "environments.prod.storageClasses.postgres: 'Fast SSD' is not a StorageClass name"],
    ['a misspelt key', (d) => (d.environments.prod.deploy.electirc = true), 'environments.prod.deploy.electirc: unknown key (expected one of ingress, observability, electric, monitoring)'],
    ['a non-boolean switch', (d) => (d.environments.dev.deploy.electric = 'yes'), "environments.dev.deploy.electric: expected true or false, got 'yes'"],
    ['monitoring without observability', (d) => (d.environments.prod.deploy.observability = false), 'environments.prod.deploy.monitoring: needs deploy.observability'],
    ['a repository URL with credentials', (d) => (d.argocd.repoURL = 'https://user:token@github.com/x/y.git'), "argocd.repoURL: 'https://user:token@github.com/x/y.git' is not a git URL"],
    ['a path leaving the repository', (d) => (d.argocd.path = '../elsewhere'), "argocd.path: '../elsewhere' is not a relative path inside the repository"],
    ['a CORS origin with a path', (d) => (d.environments.dev.corsOrigins = ['https://app.example.org/x']), "environments.dev.corsOrigins: item 0: 'https://app.example.org/x' is not an origin"],
    ['an environment name that cannot be a folder', (d) => (d.environments['Prod!'] = d.environments.prod), "environments.Prod!: 'Prod!' is not a DNS label"],
    ['two environments in one namespace', (d) => (d.environments.dev.namespace = 'smedrec-audit'), "environments.prod.namespace: 'smedrec-audit' is already the namespace of dev"],
    ['an unknown log level', (d) => (d.environments.dev.logLevel = 'verbose'), "environments.dev.logLevel: expected one of fatal, error, warn, info, debug, trace, silent, got 'verbose'"],
  ])('refuses %s, naming the key', (_what, edit, message) => {
    let error: unknown;
    try {
      parse(changed(edit));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(SynthConfigError);
    expect((error as Error).message).toContain(`invalid test.yaml: ${message}`);
  });

  it('reports every problem at once, one line each', () => {
    expect(() =>
      parse(
        changed((d) => {
          d.environments.dev.replicas.worker = 0;
          d.environments.prod.host = 'localhost';
        }),
      ),
    ).toThrow(/^invalid test\.yaml: environments\.dev\.replicas\.worker: .*\ninvalid test\.yaml: environments\.prod\.host: .*$/);
  });

  it("puts another cluster's values into every object that names them", () => {
    const config = parse({
      image: { repository: 'registry.example.org/audit/server', tag: '2.3.4' },
      argocd: { repoURL: 'git@git.example.org:ops/audit-deploy.git', targetRevision: 'release', path: 'clusters/eu/audit' },
      environments: {
        eu: {
          namespace: 'audit-eu',
          host: 'audit.example.org',
          tlsIssuer: 'corp-ca',
          replicas: { api: 2, apiMax: 3, worker: 1 },
          redis: { maxMemoryMiB: 128 },
          postgres: { storageGiB: 20 },
          storageClasses: { postgres: 'fast-ssd', redis: 'fast-ssd', observability: 'standard' },
          deploy: { observability: false, ingress: true },
        },
      },
    });
    const env = config.environments[0]!;
    const stack = buildEnvironment(env, path.join(os.tmpdir(), 'never-written'));
    const objects: any[] = appObjects(stack.app);
    expect(stack.observability).toBeUndefined();
    expect(stack.app.charts.map((c) => c.node.id)).toEqual(['audit-server', 'data']);
    expect(objects.filter((o) => o.kind !== 'Namespace').every((o) => o.metadata.namespace === 'audit-eu')).toBe(true);
    const ingress = objects.find((o) => o.kind === 'Ingress' && o.metadata.name === 'audit-server');
    expect(ingress.spec.tls).toEqual([{ hosts: ['audit.example.org'], secretName: 'audit-server-tls' }]);
    expect(ingress.metadata.annotations['cert-manager.io/cluster-issuer']).toBe('corp-ca');
    const images = objects.flatMap((o) => o.spec?.template?.spec?.containers ?? []).map((c: any) => c.image).filter((i: string) => i.includes('audit/server'));
    expect(new Set(images)).toEqual(new Set(['registry.example.org/audit/server:2.3.4']));
    expect(objects.some((o) => o.kind === 'Job' && o.metadata.name === 'audit-server-migrate-2-3-4')).toBe(true);
    const claims = objects.flatMap((o) => (o.kind === 'StatefulSet' ? o.spec.volumeClaimTemplates : o.kind === 'PersistentVolumeClaim' ? [o] : []));
    expect(claims.map((c: any) => [c.metadata.name, c.spec.storageClassName])).toEqual(expect.arrayContaining([['data', 'fast-ssd']]));
    expect(claims.every((c: any) => c.spec.storageClassName === 'fast-ssd')).toBe(true);
    // No collector: the server exports no traces and its pods get no egress to one.
    const configMap = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'audit-server-config');
    expect(configMap.data.OTEL_EXPORTER_OTLP_ENDPOINT).toBeUndefined();
    const apps: any[] = appObjects(buildArgoCd(path.join(os.tmpdir(), 'never-written'), config));
    expect(apps.map((a) => a.spec.source)).toEqual([
      { repoURL: 'git@git.example.org:ops/audit-deploy.git', targetRevision: 'release', path: 'clusters/eu/audit/eu', directory: { recurse: true } },
    ]);
  });

  it('stops `npm run synth -- --config FILE` with the key and writes nothing', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'synth-config-'));
    try {
      const file = path.join(dir, 'mine.yaml');
      fs.writeFileSync(file, fs.readFileSync(DEFAULT_CONFIG_FILE, 'utf8').replace('tlsIssuer: letsencrypt-prod', 'tlsIssuer: Letsencrypt Prod'));
      const out = path.join(dir, 'out');
      const r = spawnSync(process.execPath, ['--import', 'tsx', 'main.ts', '--config', file], {
        cwd: path.join(repoRoot, 'manifests'),
        env: { ...process.env, CDK8S_OUTDIR: out, INIT_CWD: dir },
        encoding: 'utf8',
        timeout: 120_000,
      });
      expect(r.stderr).toBe("invalid mine.yaml: environments.prod.tlsIssuer: 'Letsencrypt Prod' is not a ClusterIssuer name\n");
      expect(r.status).toBe(1);
      expect(fs.existsSync(out)).toBe(false);
      // The same file through the environment variable `cdk8s synth` users set; a stray argument is refused.
      const viaEnv = spawnSync(process.execPath, ['--import', 'tsx', 'main.ts'], {
        cwd: path.join(repoRoot, 'manifests'),
        env: { ...process.env, CDK8S_OUTDIR: out, AUDIT_MANIFESTS_CONFIG: file, INIT_CWD: dir },
        encoding: 'utf8',
        timeout: 120_000,
      });
      expect([viaEnv.status, viaEnv.stderr]).toEqual([1, "invalid mine.yaml: environments.prod.tlsIssuer: 'Letsencrypt Prod' is not a ClusterIssuer name\n"]);
      const stray = spawnSync(process.execPath, ['--import', 'tsx', 'main.ts', file], { cwd: path.join(repoRoot, 'manifests'), encoding: 'utf8', timeout: 120_000 });
      expect([stray.status, stray.stderr]).toEqual([1, `unexpected argument '${file}' (usage: npm run synth -- [--config FILE])\n`]);
      expect(listFiles(dir)).toEqual(['mine.yaml']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
