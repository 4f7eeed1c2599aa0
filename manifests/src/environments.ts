import * as fs from 'node:fs';
import * as path from 'node:path';
import { App, Chart } from 'cdk8s';
import { AlertRouting } from './alert-routing';
import { ArgoCdApplication } from './argo-cd-application';
import { AuditServer, LogLevel, MigrationMode } from './audit-server';
import { ObservabilityStack } from './observability-stack';
import { PgVectorDb } from './pg-vector-db';
import { RedisCache } from './redis-cache';
import type { KubeObject } from './validate';
import { assertValidManifests } from './validate';

/** Settings that differ between environments. */
export interface EnvironmentSettings {
  /** Environment name; also the output folder `dist-k8s/<name>`. */
  readonly name: string;
  /** Namespace of the whole stack. */
  readonly namespace: string;
  /** Public host of the api. */
  readonly host: string;
  /** cert-manager ClusterIssuer. */
  readonly clusterIssuer: string;
  /** Browser origins allowed by CORS. */
  readonly corsOrigins: string[];
  /** Minimum (HPA) replicas of the api. */
  readonly apiReplicas: number;
  /** HPA maximum. */
  readonly apiMaxReplicas: number;
  /** Worker replicas. */
  readonly workerReplicas: number;
  /** Server log level. */
  readonly logLevel: LogLevel;
  /** Redis maxmemory, MiB. */
  readonly redisMaxMemoryMiB: number;
  /** PostgreSQL data volume, GiB. */
  readonly postgresStorageGiB: number;
  /** Deploy ElectricSQL. */
  readonly electric: boolean;
  /** Redis exporter sidecar and prometheus-operator objects. */
  readonly monitoring: boolean;
}

/** The environments `npm run synth` writes. */
export const ENVIRONMENTS: readonly EnvironmentSettings[] = [
  {
    name: 'dev',
    namespace: 'smedrec-audit-dev',
    host: 'api.dev.smedrec.com',
    clusterIssuer: 'letsencrypt-staging',
    corsOrigins: ['http://localhost:5173', 'https://app.dev.smedrec.com'],
    apiReplicas: 2,
    apiMaxReplicas: 4,
    workerReplicas: 1,
    logLevel: LogLevel.DEBUG,
    redisMaxMemoryMiB: 256,
    postgresStorageGiB: 10,
    electric: true,
    monitoring: false,
  },
  {
    name: 'prod',
    namespace: 'smedrec-audit',
    host: 'api.smedrec.com',
    clusterIssuer: 'letsencrypt-prod',
    corsOrigins: ['https://app.smedrec.com'],
    apiReplicas: 3,
    apiMaxReplicas: 10,
    workerReplicas: 2,
    logLevel: LogLevel.INFO,
    redisMaxMemoryMiB: 512,
    postgresStorageGiB: 100,
    electric: false,
    monitoring: true,
  },
];

/** Git repository Argo CD pulls `dist-k8s/` from. */
export const GITOPS_REPO_URL = 'https://github.com/smedrec/smedrec-audit.git';

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
  /** The PostgreSQL construct. */
  readonly postgres: PgVectorDb;
  /** The observability construct. */
  readonly observability: ObservabilityStack;
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
  const observabilityChart = new Chart(app, 'observability');
  // File order is apply order for `kubectl apply -f dir --recursive`: the namespace (in the
  // audit-server chart) must exist before anything is created in it.
  dataChart.addDependency(appChart);
  observabilityChart.addDependency(dataChart);

  const ns = env.namespace;
  const redis = new RedisCache(dataChart, 'Redis', { namespace: ns, maxMemoryMiB: env.redisMaxMemoryMiB, exporterEnabled: env.monitoring });
  const postgres = new PgVectorDb(dataChart, 'Postgres', {
    namespace: ns,
    storageGiB: env.postgresStorageGiB,
    electricEnabled: env.electric,
  });
  const observability = new ObservabilityStack(observabilityChart, 'Observability', {
    namespace: ns,
    collectorReplicas: env.name === 'prod' ? 2 : 1,
  });
  const server = new AuditServer(appChart, 'AuditServer', {
    namespace: ns,
    // PostgreSQL is synced by the same Argo CD Application, so a PreSync hook would run before it
    // exists on the first sync; the Sync-phase hook runs in the wave after the data tier.
    migrations: MigrationMode.JOB_SYNC_WAVE,
    replicas: env.apiReplicas,
    autoscaling: { maxReplicas: env.apiMaxReplicas },
    workerReplicas: env.workerReplicas,
    config: {
      logLevel: env.logLevel,
      corsOrigins: env.corsOrigins,
      otelExporterOtlpEndpoint: observability.otlpHttpEndpoint,
      otelServiceName: 'audit-server',
    },
    ingress: { host: env.host, clusterIssuer: env.clusterIssuer },
    database: postgres.peer,
    redis: redis.peer,
    otlpCollector: observability.otlpPeer,
  });

  let monitoringApp: App | undefined;
  if (env.monitoring) {
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

/** Argo CD Applications of every environment (written to `dist-k8s/argocd`). */
export function buildArgoCd(outRoot: string, environments: readonly EnvironmentSettings[] = ENVIRONMENTS): App {
  const app = new App({ outdir: path.join(outRoot, 'argocd') });
  for (const env of environments) {
    const chart = new Chart(app, `smedrec-audit-${env.name}`);
    new ArgoCdApplication(chart, 'Application', {
      name: `smedrec-audit-${env.name}`,
      repoUrl: GITOPS_REPO_URL,
      path: `dist-k8s/${env.name}`,
      destinationNamespace: env.namespace,
    });
    if (env.monitoring) {
      new ArgoCdApplication(chart, 'MonitoringApplication', {
        name: `smedrec-audit-${env.name}-monitoring`,
        repoUrl: GITOPS_REPO_URL,
        path: `dist-k8s/${monitoringDir(env.name).split(path.sep).join('/')}`,
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

Written by \`npm run synth\` (manifests/main.ts) from the constructs in \`manifests/src\`.
A test fails when this folder differs from a fresh synth. See manifests/README.md.

- \`<env>/\`: everything one environment needs; \`kubectl apply -f dist-k8s/<env> --recursive\`
  works on an empty cluster (files are numbered in apply order).
- \`monitoring/<env>/\`: prometheus-operator ServiceMonitor/PodMonitor/PrometheusRule; apply once
  the prometheus-operator CRDs are installed.
- \`argocd/\`: one Argo CD Application per folder above (\`kubectl apply -k dist-k8s/argocd\`).
`;

/**
 * Synthesizes every environment into `outRoot`, validating each deployable set first: nothing
 * is written when a single object breaks a rule. The output root is emptied first, so the
 * result is exactly a fresh synth.
 */
export function synthesizeAll(outRoot: string, environments: readonly EnvironmentSettings[] = ENVIRONMENTS): SynthSummary {
  const objectCounts: Record<string, number> = {};
  const apps: App[] = [];
  for (const env of environments) {
    const stack = buildEnvironment(env, outRoot);
    // The monitoring objects are validated together with the environment (their selectors
    // refer to its Services and pods) but written to their own folder.
    const objects = [...appObjects(stack.app), ...(stack.monitoringApp ? appObjects(stack.monitoringApp) : [])];
    assertValidManifests(env.name, objects);
    objectCounts[env.name] = objects.length;
    apps.push(stack.app, ...(stack.monitoringApp ? [stack.monitoringApp] : []));
  }
  const argo = buildArgoCd(outRoot, environments);
  const argoObjects = appObjects(argo);
  assertValidManifests('argocd', argoObjects);
  objectCounts.argocd = argoObjects.length;
  apps.push(argo);

  emptyDirectory(outRoot);
  for (const app of apps) app.synth();
  // Not under an Application's directory source, so Kustomize cannot conflict with it.
  const argoFiles = fs.readdirSync(path.join(outRoot, 'argocd')).filter((f) => f.endsWith('.yaml')).sort();
  fs.writeFileSync(
    path.join(outRoot, 'argocd', 'kustomization.yaml'),
    `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n${argoFiles.map((f) => `  - ${f}\n`).join('')}`,
  );
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
