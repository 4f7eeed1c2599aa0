import * as fs from 'node:fs';
import * as path from 'node:path';
import { App, Chart } from 'cdk8s';
import { AlertRouting } from './alert-routing';
import { ArgoCdApplication } from './argo-cd-application';
import { AuditServer, MigrationMode } from './audit-server';
import type { EnvironmentSettings, SynthConfig } from './environment-config';
import { DEFAULT_CONFIG_FILE, loadSynthConfig } from './environment-config';
import { ObservabilityStack } from './observability-stack';
import { PgVectorDb } from './pg-vector-db';
import { PostgresCluster } from './postgres-cluster';
import { RedisCache, RedisMode } from './redis-cache';
import type { KubeObject } from './validate';
import { assertValidManifests } from './validate';

export type { EnvironmentSettings, SynthConfig } from './environment-config';

/** The committed example configuration (manifests/environments.yaml): what dist-k8s/ is synthesized from. */
export const EXAMPLE_CONFIG: SynthConfig = loadSynthConfig(DEFAULT_CONFIG_FILE);

/** The environments of the committed example configuration. */
export const ENVIRONMENTS: readonly EnvironmentSettings[] = EXAMPLE_CONFIG.environments;

/** Folder (under the output root) of the prometheus-operator objects of an environment. */
export const monitoringDir = (env: string): string => path.join('monitoring', env);

/** The charts of one environment, before synthesis. */
export interface EnvironmentStack {
  /** The App writing `dist-k8s/<env>`. */
  readonly app: App;
  /** The App writing `dist-k8s/monitoring/<env>` (prometheus-operator CRs), if any. */
  readonly monitoringApp?: App;
  /** The constructs, for tests. */
  readonly server: AuditServer;
  /** The Redis construct. */
  readonly redis: RedisCache;
  /** The PostgreSQL construct: one instance, or the CloudNativePG cluster. */
  readonly postgres: PgVectorDb | PostgresCluster;
  /** The observability construct, when the environment deploys it. */
  readonly observability?: ObservabilityStack;
}

/**
 * Composes one environment. Charts carry no namespace or labels of their own (cdk8s would stamp
 * the namespace on cluster-scoped objects and the labels never reach selectors); the constructs
 * set both explicitly.
 */
export function buildEnvironment(env: EnvironmentSettings, outRoot: string): EnvironmentStack {
  const app = new App({ outdir: path.join(outRoot, env.name) });
  const appChart = new Chart(app, 'audit-server');
  const dataChart = new Chart(app, 'data');
  // File order is apply order for `kubectl apply -f dir --recursive`: the namespace (in the
  // audit-server chart) must exist before anything is created in it.
  dataChart.addDependency(appChart);

  const ns = env.namespace;
  const redis = new RedisCache(dataChart, 'Redis', {
    namespace: ns,
    maxMemoryMiB: env.redisMaxMemoryMiB,
    exporterEnabled: env.monitoring,
    storageClassName: env.storageClasses.redis,
    mode: env.redisMode === 'sentinel' ? RedisMode.SENTINEL : RedisMode.STANDALONE,
  });
  const postgres = postgresOf(dataChart, env);
  let observability: ObservabilityStack | undefined;
  if (env.observability) {
    const observabilityChart = new Chart(app, 'observability');
    observabilityChart.addDependency(dataChart);
    observability = new ObservabilityStack(observabilityChart, 'Observability', {
      namespace: ns,
      collectorReplicas: env.collectorReplicas,
      storageClassName: env.storageClasses.observability,
    });
  }
  const server = new AuditServer(appChart, 'AuditServer', {
    namespace: ns,
    imageRepository: env.imageRepository,
    imageTag: env.imageTag,
    // PostgreSQL is synced by the same Argo CD Application, so a PreSync hook would run before it
    // exists on the first sync; the Sync-phase hook runs in the wave after the data tier.
    migrations: MigrationMode.JOB_SYNC_WAVE,
    replicas: env.apiReplicas,
    autoscaling: { maxReplicas: env.apiMaxReplicas },
    workerReplicas: env.workerReplicas,
    config: {
      logLevel: env.logLevel,
      corsOrigins: env.corsOrigins,
      otelExporterOtlpEndpoint: observability?.otlpHttpEndpoint,
      otelServiceName: 'audit-server',
    },
    ingressEnabled: env.ingress,
    ingress: { host: env.host, clusterIssuer: env.clusterIssuer },
    database: postgres.peer,
    redis: redis.peer,
    redisSentinel: redis.sentinels && { sentinels: redis.sentinels, masterName: redis.masterName, peer: redis.sentinelPeer },
    otlpCollector: observability?.otlpPeer,
  });

  let monitoringApp: App | undefined;
  if (env.monitoring && observability) {
    monitoringApp = new App({ outdir: path.join(outRoot, monitoringDir(env.name)) });
    const monitoringChart = new Chart(monitoringApp, 'prometheus-operator');
    observability.addPrometheusMonitoring(monitoringChart, server);
    // Receivers come from the Secret `alert-receivers` (docs/operations.md, "Alert routing").
    const receiverSecret = (key: string) => ({ secretName: 'alert-receivers', key });
    new AlertRouting(monitoringChart, 'AlertRouting', {
      namespace: env.namespace,
      critical: { webhookUrlSecret: receiverSecret('critical-webhook-url'), pagerDutyRoutingKeySecret: receiverSecret('pagerduty-routing-key') },
      warning: { webhookUrlSecret: receiverSecret('warning-webhook-url') },
    });
  }
  return { app, monitoringApp, server, redis, postgres, observability };
}

/**
 * The environment's PostgreSQL: `PgVectorDb` (one instance, nightly pg_dump), or a CloudNativePG
 * `PostgresCluster` (three instances across zones, WAL archiving to an object store, failover by
 * the operator; its PodMonitor when the environment has monitoring).
 */
function postgresOf(chart: Chart, env: EnvironmentSettings): PgVectorDb | PostgresCluster {
  if (env.postgresMode === 'cluster') {
    return new PostgresCluster(chart, 'Postgres', {
      namespace: env.namespace,
      storageGiB: env.postgresStorageGiB,
      storageClassName: env.storageClasses.postgres,
      backupDestinationPath: env.postgresBackupDestination,
      backupEndpointUrl: env.postgresBackupEndpoint,
      podMonitorEnabled: env.monitoring,
    });
  }
  return new PgVectorDb(chart, 'Postgres', {
    namespace: env.namespace,
    storageGiB: env.postgresStorageGiB,
    storageClassName: env.storageClasses.postgres,
    electricEnabled: env.electric,
  });
}

/** Argo CD Applications of every environment (written to `dist-k8s/argocd`). */
export function buildArgoCd(outRoot: string, config: SynthConfig = EXAMPLE_CONFIG): App {
  const app = new App({ outdir: path.join(outRoot, 'argocd') });
  const source = config.argocd;
  for (const env of config.environments) {
    const chart = new Chart(app, `smedrec-audit-${env.name}`);
    new ArgoCdApplication(chart, 'Application', {
      name: `smedrec-audit-${env.name}`,
      repoUrl: source.repoUrl,
      targetRevision: source.targetRevision,
      path: `${source.path}/${env.name}`,
      destinationNamespace: env.namespace,
    });
    if (env.monitoring) {
      new ArgoCdApplication(chart, 'MonitoringApplication', {
        name: `smedrec-audit-${env.name}-monitoring`,
        repoUrl: source.repoUrl,
        targetRevision: source.targetRevision,
        path: `${source.path}/${monitoringDir(env.name).split(path.sep).join('/')}`,
        destinationNamespace: env.namespace,
      });
    }
  }
  return app;
}

/** JSON of every object of an App, in output order. */
export function appObjects(app: App): KubeObject[] {
  return app.charts.flatMap((chart) => chart.toJson() as KubeObject[]);
}

/** What {@link synthesizeAll} wrote. */
export interface SynthSummary {
  /** Files written, relative to the output root, sorted. */
  readonly files: string[];
  /** Objects per deployable set (`dev`, `prod`, `argocd`). */
  readonly objectCounts: Record<string, number>;
}

const README = `# dist-k8s — generated, do not edit

Written by \`npm run synth\` (manifests/main.ts) from the constructs in \`manifests/src\` and the
environments in \`manifests/environments.yaml\`. A test fails when this folder differs from a
fresh synth. See manifests/README.md.

- \`<env>/\`: everything one environment needs; \`kubectl apply -f dist-k8s/<env> --recursive\`
  works on an empty cluster (files are numbered in apply order). Its \`Kustomization\` file
  lists them for overlays (\`resources: [<repo>/dist-k8s/<env>]\`, \`kubectl apply -k\`); it has
  no \`.yaml\` extension, so \`kubectl apply -f\` and Argo CD's directory source skip it.
- \`monitoring/<env>/\`: prometheus-operator ServiceMonitor/PodMonitor/PrometheusRule; apply once
  the prometheus-operator CRDs are installed.
- \`argocd/\`: one Argo CD Application per folder above (\`kubectl apply -k dist-k8s/argocd\`).
`;

/** A Kustomization listing `files` (kustomize's `Kustomization` file, in output order). */
function kustomization(files: readonly string[]): string {
  return `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n${files.map((f) => `  - ${f}\n`).join('')}`;
}

/** Name of the Kustomization file in a synced folder: kustomize reads it, `kubectl -f` and Argo CD's directory source do not. */
export const FOLDER_KUSTOMIZATION = 'Kustomization';

/**
 * Synthesizes every environment into `outRoot`, validating each deployable set first: nothing
 * is written when a single object breaks a rule. The output root is emptied first, so the
 * result is exactly a fresh synth.
 */
export function synthesizeAll(outRoot: string, config: SynthConfig = EXAMPLE_CONFIG): SynthSummary {
  const objectCounts: Record<string, number> = {};
  const apps: App[] = [];
  const folders: string[] = [];
  for (const env of config.environments) {
    const stack = buildEnvironment(env, outRoot);
    // The monitoring objects are validated together with the environment (their selectors
    // refer to its Services and pods) but written to their own folder.
    const objects = [...appObjects(stack.app), ...(stack.monitoringApp ? appObjects(stack.monitoringApp) : [])];
    assertValidManifests(env.name, objects);
    objectCounts[env.name] = objects.length;
    apps.push(stack.app, ...(stack.monitoringApp ? [stack.monitoringApp] : []));
    folders.push(env.name, ...(stack.monitoringApp ? [monitoringDir(env.name)] : []));
  }
  const argo = buildArgoCd(outRoot, config);
  const argoObjects = appObjects(argo);
  assertValidManifests('argocd', argoObjects);
  objectCounts.argocd = argoObjects.length;
  apps.push(argo);

  emptyDirectory(outRoot);
  for (const app of apps) app.synth();
  const yamlFiles = (dir: string) => fs.readdirSync(path.join(outRoot, dir)).filter((f) => f.endsWith('.yaml')).sort();
  // Not under an Application's directory source, so it may be a plain kustomization.yaml.
  fs.writeFileSync(path.join(outRoot, 'argocd', 'kustomization.yaml'), kustomization(yamlFiles('argocd')));
  for (const dir of folders) fs.writeFileSync(path.join(outRoot, dir, FOLDER_KUSTOMIZATION), kustomization(yamlFiles(dir)));
  fs.writeFileSync(path.join(outRoot, 'README.md'), README);
  return { files: listFiles(outRoot), objectCounts };
}
/** Removes everything inside `dir` (creating it when missing); refuses obviously wrong roots. */
function emptyDirectory(dir: string): void {
  const resolved = path.resolve(dir);
  if (resolved === path.parse(resolved).root || fs.existsSync(path.join(resolved, 'package.json'))) {
    throw new Error(`refusing to empty '${resolved}': it is not an output folder`);
  }
  fs.mkdirSync(resolved, { recursive: true });
  for (const entry of fs.readdirSync(resolved)) fs.rmSync(path.join(resolved, entry), { recursive: true, force: true });
}

/** Files under `dir`, relative, with `/` separators, sorted. */
export function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(child);
      else out.push(child);
    }
  };
  walk('');
  return out.sort();
}
