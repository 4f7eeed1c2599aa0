/* eslint-disable @typescript-eslint/no-unsafe-return --
   tests walk synthesized manifest JSON, whose shape the assertions themselves check */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Testing } from 'cdk8s';
import { configSchema, loadConfig } from '../../server/src/config';
import { ArchiveEncryption, AuditServer, MigrationMode, LogLevel } from '../src/audit-server';
import type { AuditServerProps } from '../src/audit-server';
import { validateManifests } from '../src/validate';
import { RESTRICTED_CONTAINER_CONTEXT, RESTRICTED_POD_CONTEXT } from './support/restricted-contexts';

function synth(props: AuditServerProps = {}): any[] {
  const chart = Testing.chart();
  new AuditServer(chart, 'AuditServer', props);
  return Testing.synth(chart);
}
const get = (objects: any[], kind: string, name: string): any => {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind} ${name}`);
  return o;
};
const container = (objects: any[], deployment: string): any => get(objects, 'Deployment', deployment).spec.template.spec.containers[0];
const envOf = (c: any) => Object.fromEntries(c.env.map((e: any) => [e.name, e.value ?? e.valueFrom]));

describe('AuditServer', () => {
  const objects = synth({ config: { corsOrigins: ['https://app.smedrec.com'] } });

  it('matches the snapshot', () => {
    expect(objects).toMatchSnapshot();
  });

  it('creates the namespace smedrec-audit labelled for Pod Security Standards restricted', () => {
    expect(get(objects, 'Namespace', 'smedrec-audit').metadata).toEqual(
      expect.objectContaining({
        labels: expect.objectContaining({
          'pod-security.kubernetes.io/enforce': 'restricted',
          'pod-security.kubernetes.io/audit': 'restricted',
          'pod-security.kubernetes.io/warn': 'restricted',
        }),
      }),
    );
    expect(get(objects, 'Namespace', 'smedrec-audit').metadata.namespace).toBeUndefined();
    expect(objects.filter((o) => o.kind !== 'Namespace').every((o) => o.metadata.namespace === 'smedrec-audit')).toBe(true);
  });

  it('gives the service account no token', () => {
    expect(get(objects, 'ServiceAccount', 'audit-server').automountServiceAccountToken).toBe(false);
    expect(get(objects, 'Deployment', 'audit-server').spec.template.spec.automountServiceAccountToken).toBe(false);
  });

  it('writes non-secret configuration into the ConfigMap under the server env names', () => {
    expect(get(objects, 'ConfigMap', 'audit-server-config').data).toEqual({
      NODE_ENV: 'production',
      PORT: '3000',
      HOST: '0.0.0.0',
      LOG_LEVEL: 'info',
      AUDIT_LOG_ORIGIN: 'smedrec.audit',
      CORS_ORIGINS: 'https://app.smedrec.com',
      OTEL_SERVICE_NAME: 'audit-server',
      RATE_LIMIT_PER_MINUTE: '6000',
      DATABASE_POOL_MAX: '10',
      HTTP_BODY_LIMIT_BYTES: '8388608',
      SHUTDOWN_TIMEOUT_MS: '25000',
      TRUST_PROXY: 'loopback, linklocal, uniquelocal',
      DATABASE_MIGRATE_ON_START: 'false',
    });
  });

  it('gives each role its secrets as read-only files of the Secret, optional keys as optional references', () => {
    const file = (key: string) => `/run/secrets/audit-server/${key}`;
    const ref = (key: string) => ({ secretKeyRef: { name: 'audit-server-secrets', key, optional: true } });
    const api = container(objects, 'audit-server');
    expect(envOf(api)).toEqual({
      AUDIT_ROLE: 'api',
      DATABASE_URL_FILE: file('database-url'),
      REDIS_URL_FILE: file('redis-url'),
      AUDIT_SIGNING_KEY_FILE: file('signing-key'),
      AUTH_SECRET_FILE: file('auth-secret'),
      DELIVERY_SECRET_KEY_FILE: file('delivery-secret-key'),
      AUDIT_BOOTSTRAP_API_KEY: ref('bootstrap-api-key'),
      INNGEST_SIGNING_KEY: ref('inngest-signing-key'),
    });
    expect(api.volumeMounts).toContainEqual({ name: 'api-secrets', mountPath: '/run/secrets/audit-server', readOnly: true });
    expect(get(objects, 'Deployment', 'audit-server').spec.template.spec.volumes).toContainEqual({
      name: 'api-secrets',
      secret: {
        secretName: 'audit-server-secrets',
        defaultMode: 0o440,
        items: ['database-url', 'redis-url', 'signing-key', 'auth-secret', 'delivery-secret-key'].map((key) => ({ key, path: key })),
      },
    });
    // The worker runs as the runtime role too (partition upkeep goes through a SECURITY DEFINER
    // function) and verifies with the public key: no signing key, no bootstrap key. It delivers
    // to the destinations, so it opens their sealed secrets with the same delivery key.
    expect(envOf(container(objects, 'audit-server-worker'))).toEqual({
      AUDIT_ROLE: 'worker',
      DATABASE_URL_FILE: file('database-url'),
      REDIS_URL_FILE: file('redis-url'),
      AUDIT_VERIFIER_KEY_FILE: file('verifier-key'),
      DELIVERY_SECRET_KEY_FILE: file('delivery-secret-key'),
      AUDIT_TRUSTED_VERIFIER_KEYS: ref('trusted-verifier-keys'),
    });
  });

  it('runs the api image pinned to the package version on port http 3000', () => {
    const c = container(objects, 'audit-server');
    expect(c.image).toBe('ghcr.io/smedrec/audit-server:0.1.0');
    expect(c.ports).toEqual([{ name: 'http', containerPort: 3000, protocol: 'TCP' }]);
    expect(c.envFrom).toEqual([{ configMapRef: { name: 'audit-server-config' } }]);
  });

  it('rolls out with maxSurge 1 / maxUnavailable 0 and leaves the replica count to the HPA', () => {
    const d = get(objects, 'Deployment', 'audit-server');
    expect(d.spec.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
    expect(d.spec.replicas).toBeUndefined();
    expect(get(synth({ autoscalingEnabled: false }), 'Deployment', 'audit-server').spec.replicas).toBe(3);
  });

  it('probes /health (liveness 30/10/5/3), /ready (readiness 10/5/3/3) and has a startup probe', () => {
    const c = container(objects, 'audit-server');
    expect(c.livenessProbe).toEqual({
      httpGet: { path: '/health', port: 'http' },
      initialDelaySeconds: 30,
      periodSeconds: 10,
      timeoutSeconds: 5,
      failureThreshold: 3,
    });
    expect(c.readinessProbe).toEqual({
      httpGet: { path: '/ready', port: 'http' },
      initialDelaySeconds: 10,
      periodSeconds: 5,
      timeoutSeconds: 3,
      failureThreshold: 3,
    });
    expect(c.startupProbe).toEqual({ httpGet: { path: '/health', port: 'http' }, periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 30 });
  });

  it('delays SIGTERM with a preStop sleep and waits preStop + shutdown timeout + margin before SIGKILL', () => {
    const spec = get(objects, 'Deployment', 'audit-server').spec.template.spec;
    expect(spec.containers[0].lifecycle).toEqual({ preStop: { exec: { command: ['sleep', '10'] } } });
    expect(spec.terminationGracePeriodSeconds).toBe(10 + 25 + 10);
  });

  it('hardens every pod: non-root 1001, seccomp RuntimeDefault, no escalation, read-only root, no capabilities, /tmp emptyDir', () => {
    const pods = [
      get(objects, 'Deployment', 'audit-server').spec.template.spec,
      get(objects, 'Deployment', 'audit-server-worker').spec.template.spec,
      get(objects, 'Job', 'audit-server-migrate-0-1-0').spec.template.spec,
    ];
    for (const pod of pods) {
      expect(pod.securityContext).toEqual(RESTRICTED_POD_CONTEXT);
      expect(pod.containers[0].securityContext).toEqual(RESTRICTED_CONTAINER_CONTEXT);
      // Writable: /tmp only. The role's secrets are a read-only volume (role-secrets.test.ts).
      expect(pod.volumes[0]).toEqual({ name: 'tmp', emptyDir: { sizeLimit: '256Mi' } });
      expect(pod.volumes.slice(1).every((v: any) => v.secret !== undefined)).toBe(true);
      expect(pod.containers[0].volumeMounts.filter((m: any) => m.readOnly !== true)).toEqual([{ name: 'tmp', mountPath: '/tmp' }]);
    }
  });

  it('requests and limits cpu, memory and ephemeral storage', () => {
    expect(container(objects, 'audit-server').resources).toEqual({
      requests: { cpu: '500m', memory: '512Mi', 'ephemeral-storage': '128Mi' },
      limits: { cpu: '1', memory: '1Gi', 'ephemeral-storage': '512Mi' },
    });
  });

  it('spreads api pods across zones and nodes and annotates them for Prometheus', () => {
    const template = get(objects, 'Deployment', 'audit-server').spec.template;
    expect(template.spec.topologySpreadConstraints.map((t: any) => [t.topologyKey, t.whenUnsatisfiable, t.maxSkew])).toEqual([
      ['topology.kubernetes.io/zone', 'ScheduleAnyway', 1],
      ['kubernetes.io/hostname', 'DoNotSchedule', 1],
    ]);
    expect(template.metadata.annotations).toEqual({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '3000', 'prometheus.io/path': '/metrics' });
  });

  it('runs the worker as its own Deployment with AUDIT_ROLE=worker', () => {
    const worker = get(objects, 'Deployment', 'audit-server-worker');
    expect(worker.spec.replicas).toBe(2);
    expect(envOf(worker.spec.template.spec.containers[0]).AUDIT_ROLE).toBe('worker');
    expect(worker.spec.selector.matchLabels['app.kubernetes.io/component']).toBe('worker');
  });

  it('runs migrations as an Argo CD PreSync hook Job with AUDIT_ROLE=migrate by default', () => {
    const job = get(objects, 'Job', 'audit-server-migrate-0-1-0');
    expect(job.metadata.annotations).toEqual({
      'argocd.argoproj.io/hook': 'PreSync',
      'argocd.argoproj.io/hook-delete-policy': 'BeforeHookCreation',
    });
    expect(envOf(job.spec.template.spec.containers[0])).toEqual({
      AUDIT_ROLE: 'migrate',
      DATABASE_URL_FILE: '/run/secrets/audit-server/migration-database-url',
    });
    expect(job.spec.template.spec.restartPolicy).toBe('Never');
  });

  it('can run migrations as a Sync-phase hook in its own wave, or as an init container', () => {
    const wave = get(synth({ migrations: MigrationMode.JOB_SYNC_WAVE }), 'Job', 'audit-server-migrate-0-1-0');
    expect(wave.metadata.annotations).toMatchObject({ 'argocd.argoproj.io/hook': 'Sync', 'argocd.argoproj.io/sync-wave': '0' });
    const init = synth({ migrations: MigrationMode.INIT_CONTAINER });
    expect(init.some((o) => o.kind === 'Job')).toBe(false);
    for (const name of ['audit-server', 'audit-server-worker']) {
      const initContainers = get(init, 'Deployment', name).spec.template.spec.initContainers;
      expect(initContainers.map((c: any) => [c.name, envOf(c).AUDIT_ROLE])).toEqual([['migrate', 'migrate']]);
    }
  });

  it('exposes a ClusterIP Service on 80 → http and a headless Service', () => {
    expect(get(objects, 'Service', 'audit-server').spec).toEqual({
      type: 'ClusterIP',
      selector: { 'app.kubernetes.io/name': 'audit-server', 'app.kubernetes.io/instance': 'audit-server', 'app.kubernetes.io/component': 'api' },
      ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }],
    });
    expect(get(objects, 'Service', 'audit-server-headless').spec.clusterIP).toBe('None');
  });

  it('routes the seed paths through nginx with TLS from cert-manager', () => {
    const ingress = get(objects, 'Ingress', 'audit-server');
    expect(ingress.spec.ingressClassName).toBe('nginx');
    expect(ingress.spec.tls).toEqual([{ hosts: ['api.smedrec.com'], secretName: 'audit-server-tls' }]);
    expect(ingress.spec.rules[0].host).toBe('api.smedrec.com');
    expect(ingress.spec.rules[0].http.paths.map((p: any) => [p.path, p.pathType, p.backend.service.name, p.backend.service.port.name])).toEqual(
      ['/api', '/trpc', '/graphql', '/auth', '/health', '/ready', '/'].map((p) => [p, 'Prefix', 'audit-server', 'http']),
    );
  });

  it('sets real ingress-nginx annotations: 100 req/min per client, CORS with x-api-key, hashing, body size, timeouts', () => {
    const a = get(objects, 'Ingress', 'audit-server').metadata.annotations;
    expect(a).toMatchObject({
      'cert-manager.io/cluster-issuer': 'letsencrypt-prod',
      'nginx.ingress.kubernetes.io/limit-rpm': '100',
      'nginx.ingress.kubernetes.io/limit-connections': '20',
      'nginx.ingress.kubernetes.io/enable-cors': 'true',
      'nginx.ingress.kubernetes.io/cors-allow-origin': 'https://app.smedrec.com',
      'nginx.ingress.kubernetes.io/upstream-hash-by': '$binary_remote_addr',
      'nginx.ingress.kubernetes.io/proxy-body-size': '8m',
      'nginx.ingress.kubernetes.io/proxy-read-timeout': '60',
      'nginx.ingress.kubernetes.io/proxy-send-timeout': '60',
      'nginx.ingress.kubernetes.io/proxy-connect-timeout': '5',
    });
    expect(a['nginx.ingress.kubernetes.io/cors-allow-headers'].toLowerCase().split(', ')).toEqual(
      expect.arrayContaining(['authorization', 'content-type', 'x-api-key']),
    );
    // Without origins there is no CORS at all.
    expect(Object.keys(get(synth(), 'Ingress', 'audit-server').metadata.annotations).some((k) => k.includes('cors'))).toBe(false);
  });

  it('answers 429 over the rate limits when asked to configure the ingress-nginx controller, and touches no controller by default', () => {
    // ingress-nginx answers limit-rpm/limit-connections excess with 503 unless its controller
    // ConfigMap sets the status; there is no per-Ingress annotation for it.
    expect(objects.some((o) => o.kind === 'ConfigMap' && o.metadata.namespace !== 'smedrec-audit')).toBe(false);
    const withController = synth({ ingress: { controllerConfigMap: {} } });
    expect(get(withController, 'ConfigMap', 'ingress-nginx-controller')).toEqual({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: 'ingress-nginx-controller',
        namespace: 'ingress-nginx',
        labels: { 'app.kubernetes.io/part-of': 'smedrec-audit' },
        annotations: { 'argocd.argoproj.io/sync-wave': '-2' },
      },
      data: { 'limit-req-status-code': '429', 'limit-conn-status-code': '429' },
    });
    expect(validateManifests(withController)).toEqual([]);
    const custom = synth({ ingress: { controllerConfigMap: { name: 'nginx-config', namespace: 'edge' } } });
    expect(get(custom, 'ConfigMap', 'nginx-config').metadata.namespace).toBe('edge');
    // A snippet annotation would be rejected by controllers that disallow snippets (the default).
    expect(Object.keys(get(withController, 'Ingress', 'audit-server').metadata.annotations).some((k) => k.includes('snippet'))).toBe(false);
  });

  it('documents the controller settings in docs/deploying.md exactly as the construct emits them', () => {
    const page = fs.readFileSync(path.resolve(__dirname, '..', '..', 'docs', 'deploying.md'), 'utf8');
    for (const [key, value] of Object.entries(AuditServer.INGRESS_NGINX_RATE_LIMIT_STATUS)) expect(page).toContain(`${key}: "${value}"`);
    expect(page).toContain('controllerConfigMap');
  });

  it('keeps /metrics off the public ingress', () => {
    const deny = get(objects, 'Ingress', 'audit-server-metrics-deny');
    expect(deny.metadata.annotations).toMatchObject({ 'nginx.ingress.kubernetes.io/denylist-source-range': '0.0.0.0/0,::/0' });
    expect(deny.spec.rules[0].http.paths).toEqual([
      { path: '/metrics', pathType: 'Exact', backend: { service: { name: 'audit-server', port: { name: 'http' } } } },
    ]);
  });

  it('autoscales 3–10 on CPU 70 % and memory 80 % with the seed scale-up/scale-down behaviour', () => {
    expect(get(objects, 'HorizontalPodAutoscaler', 'audit-server').spec).toEqual({
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'audit-server' },
      minReplicas: 3,
      maxReplicas: 10,
      metrics: [
        { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } },
        { type: 'Resource', resource: { name: 'memory', target: { type: 'Utilization', averageUtilization: 80 } } },
      ],
      behavior: {
        scaleUp: { stabilizationWindowSeconds: 60, policies: [{ type: 'Percent', value: 50, periodSeconds: 60 }] },
        scaleDown: { stabilizationWindowSeconds: 300, policies: [{ type: 'Percent', value: 10, periodSeconds: 60 }] },
      },
    });
  });

  it('has a PodDisruptionBudget for api and worker', () => {
    expect(get(objects, 'PodDisruptionBudget', 'audit-server').spec).toEqual({
      maxUnavailable: 1,
      unhealthyPodEvictionPolicy: 'AlwaysAllow',
      selector: { matchLabels: { 'app.kubernetes.io/name': 'audit-server', 'app.kubernetes.io/instance': 'audit-server', 'app.kubernetes.io/component': 'api' } },
    });
    expect(get(objects, 'PodDisruptionBudget', 'audit-server-worker').spec.selector.matchLabels['app.kubernetes.io/component']).toBe('worker');
  });

  it('denies all traffic by default and allows ingress-nginx → api, api → DNS, Postgres, Redis, OTLP', () => {
    expect(get(objects, 'NetworkPolicy', 'default-deny-all').spec).toEqual({ podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
    const peers = synth({
      database: { podLabels: { app: 'pg' }, port: 5432 },
      redis: { podLabels: { app: 'redis' }, port: 6379 },
      otlpCollector: { podLabels: { app: 'otel' }, namespace: 'obs', port: 4318 },
    });
    const api = get(peers, 'NetworkPolicy', 'audit-server').spec;
    expect(api.ingress).toEqual([
      {
        from: [
          {
            podSelector: { matchLabels: { 'app.kubernetes.io/name': 'ingress-nginx' } },
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ingress-nginx' } },
          },
          { podSelector: {}, namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } },
        ],
        ports: [{ protocol: 'TCP', port: 3000 }],
      },
    ]);
    expect(api.egress.map((r: any) => [r.to[0], r.ports.map((p: any) => `${p.protocol}/${p.port}`)])).toEqual([
      [
        { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } },
        ['UDP/53', 'TCP/53'],
      ],
      [{ podSelector: { matchLabels: { app: 'pg' } } }, ['TCP/5432']],
      [{ podSelector: { matchLabels: { app: 'redis' } } }, ['TCP/6379']],
      [{ podSelector: { matchLabels: { app: 'otel' } }, namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'obs' } } }, ['TCP/4318']],
    ]);
    // Without known peers the database and Redis are reachable on their ports only.
    expect(get(objects, 'NetworkPolicy', 'audit-server').spec.egress[1]).toEqual({ to: [{ ipBlock: { cidr: '0.0.0.0/0' } }], ports: [{ protocol: 'TCP', port: 5432 }] });
  });

  it('lets api and worker reach only the external endpoints listed in externalEgress (SIEMs, OIDC, witness)', () => {
    const rules = (o: any[], name: string) => get(o, 'NetworkPolicy', name).spec.egress as any[];
    const external = (r: any) => r.to[0].ipBlock && r.ports[0].port === 443;
    // By default nothing but DNS and the data tier: no rule for HTTPS anywhere.
    for (const name of ['audit-server', 'audit-server-worker']) expect(rules(objects, name).filter(external)).toEqual([]);
    const listed = synth({ externalEgress: [{ cidr: '203.0.113.10/32', port: 443 }, { cidr: '198.51.100.0/24', port: 6514 }] });
    for (const name of ['audit-server', 'audit-server-worker']) {
      expect(rules(listed, name).slice(-2)).toEqual([
        { to: [{ ipBlock: { cidr: '203.0.113.10/32' } }], ports: [{ protocol: 'TCP', port: 443 }] },
        { to: [{ ipBlock: { cidr: '198.51.100.0/24' } }], ports: [{ protocol: 'TCP', port: 6514 }] },
      ]);
    }
  });

  it('passes INNGEST_BASE_URL through the ConfigMap and refuses one that is not an http(s) URL', () => {
    expect(get(synth({ config: { inngestBaseUrl: 'http://inngest.jobs:8288' } }), 'ConfigMap', 'audit-server-config').data.INNGEST_BASE_URL).toBe('http://inngest.jobs:8288');
    expect(get(objects, 'ConfigMap', 'audit-server-config').data.INNGEST_BASE_URL).toBeUndefined();
    expect(() => synth({ config: { inngestBaseUrl: 'inngest:8288' } })).toThrow("invalid config.inngestBaseUrl: 'inngest:8288' (expected an http(s) URL)");
  });

  it('reaches the sentinels of a Sentinel group on 26379, from api and worker alike', () => {
    const sentinelPeer = { podLabels: { app: 'sentinel' }, port: 26379 };
    const withSentinels = synth({ redis: { podLabels: { app: 'redis' }, port: 6379 }, redisSentinel: { sentinels: ['s-0:26379'], peer: sentinelPeer } });
    for (const name of ['audit-server', 'audit-server-worker']) {
      expect(get(withSentinels, 'NetworkPolicy', name).spec.egress).toContainEqual({ to: [{ podSelector: { matchLabels: { app: 'sentinel' } } }], ports: [{ protocol: 'TCP', port: 26379 }] });
    }
    expect(validateManifests(withSentinels)).toEqual([]);
  });

  it('passes the schema and every policy rule on its own', () => {
    expect(validateManifests(objects)).toEqual([]);
  });

  it('takes typed config: log level, origin, OTLP endpoint', () => {
    const cm = get(
      synth({ config: { logLevel: LogLevel.DEBUG, auditLogOrigin: 'audit.example.org', otelExporterOtlpEndpoint: 'http://otel:4318' } }),
      'ConfigMap',
      'audit-server-config',
    ).data;
    expect(cm).toMatchObject({ LOG_LEVEL: 'debug', AUDIT_LOG_ORIGIN: 'audit.example.org', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4318' });
  });

  it('leaves the namespace out when asked to', () => {
    expect(synth({ createNamespace: false }).some((o) => o.kind === 'Namespace' || o.metadata.name === 'default-deny-all')).toBe(false);
  });

  it('fails when the image tag is latest', () => {
    expect(() => synth({ imageTag: 'latest' })).toThrow(
      "invalid imageTag: 'ghcr.io/smedrec/audit-server:latest' (tag latest has no version number; expected a tag with a version number such as 1.2.3, or an @sha256 digest)",
    );
  });

  it('fails when autoscaling would allow a single replica', () => {
    expect(() => synth({ replicas: 1 })).toThrow('invalid replicas: 1 (the HPA minimum must be >= 2 for availability)');
  });

  it('fails when maxReplicas is below replicas', () => {
    expect(() => synth({ replicas: 4, autoscaling: { maxReplicas: 3 } })).toThrow('invalid autoscaling.maxReplicas: 3 (expected >= replicas 4)');
  });

  it('fails when a CORS origin has a path', () => {
    expect(() => synth({ config: { corsOrigins: ['https://app.smedrec.com/'] } })).toThrow(
      "invalid config.corsOrigins: 'https://app.smedrec.com/' (expected scheme://host[:port] without a path)",
    );
  });

  it('fails when a resource quantity is malformed', () => {
    expect(() =>
      synth({ apiResources: { cpuRequest: 'half', cpuLimit: '1', memoryRequest: '1Gi', memoryLimit: '1Gi', ephemeralStorageRequest: '1Gi', ephemeralStorageLimit: '1Gi' } }),
    ).toThrow("invalid apiResources.cpuRequest: 'half' (expected a kubernetes quantity such as 256Mi or 500m)");
  });

  it('fails when the namespace is not a dns label', () => {
    expect(() => synth({ namespace: 'SMEDREC_Audit' })).toThrow(
      "invalid namespace: 'SMEDREC_Audit' (expected a dns label: lower-case letters, digits and -, at most 63)",
    );
  });

  it('sets only variables the server reads, with values its config schema accepts in every role', () => {
    const known = Object.keys(configSchema.shape);
    const cm = get(objects, 'ConfigMap', 'audit-server-config').data as Record<string, string>;
    // A secret-bearing variable may come as `<NAME>_FILE` (manifests/test/role-secrets.test.ts).
    const envNames = container(objects, 'audit-server').env.map((e: any) => String(e.name).replace(/_FILE$/, ''));
    for (const name of [...Object.keys(cm), ...envNames]) expect(known).toContain(name);
    for (const role of ['api', 'worker', 'migrate']) {
      // Stand-ins for the Secret values, in the shapes the schema demands.
      const config = loadConfig({
        ...cm,
        AUDIT_ROLE: role,
        DATABASE_URL: 'postgres://audit_runtime@postgres:5432/audit',
        REDIS_URL: 'redis://redis:6379',
        AUDIT_SIGNING_KEY: 'PRIVATE+KEY+stand-in',
      });
      expect([config.PORT, config.NODE_ENV, config.DATABASE_MIGRATE_ON_START, config.CORS_ORIGINS]).toEqual([3000, 'production', false, ['https://app.smedrec.com']]);
    }
  });
});

/**
 * `retention.s3` (docs/privacy.md §6): the worker alone gets the archive bucket's settings, its
 * credentials (a static key from the Secret as files, or a web identity: its own ServiceAccount and
 * an STS-only projected token) and the egress to the bucket; the api gets none of it; without the
 * prop nothing changes. The values are ones the server accepts.
 */
const podOf = (objects: any[], deployment: string): any => get(objects, 'Deployment', deployment).spec.template.spec;
const egressOf = (objects: any[], name: string): any[] => get(objects, 'NetworkPolicy', name).spec.egress;

const MINIO = { podLabels: { app: 'minio' }, namespace: 'storage', port: 9000 };
const STATIC: AuditServerProps = {
  retention: {
    s3: {
      bucketUrl: 's3://audit-archive/prod',
      region: 'us-east-1',
      endpoint: 'http://minio.storage:9000',
      forcePathStyle: true,
      encryption: ArchiveEncryption.AES256,
      objectLockDays: 2190,
      staticAccessKey: true,
      peer: MINIO,
    },
  },
};
const IRSA: AuditServerProps = {
  retention: {
    s3: {
      bucketUrl: 's3://audit-archive',
      region: 'eu-central-1',
      encryption: ArchiveEncryption.KMS,
      kmsKeyId: 'alias/audit-archive',
      webIdentity: { roleArn: 'arn:aws:iam::111122223333:role/audit-archive-writer' },
    },
  },
};

describe('AuditServer retention.s3', () => {
  it('changes nothing without the prop: no archive settings, one ServiceAccount, no HTTPS egress', () => {
    const objects = synth();
    for (const d of ['audit-server', 'audit-server-worker']) {
      const env = envOf(podOf(objects, d).containers[0]);
      expect(Object.keys(env).filter((k) => k.startsWith('RETENTION_') || k.startsWith('AWS_'))).toEqual([]);
      expect(podOf(objects, d).serviceAccountName).toBe('audit-server');
    }
    expect(objects.filter((o) => o.kind === 'ServiceAccount').map((o) => o.metadata.name)).toEqual(['audit-server']);
  });

  it('gives the worker alone the bucket settings, the static key as files, and egress to the store', () => {
    const objects = synth(STATIC);
    const worker = podOf(objects, 'audit-server-worker');
    expect(envOf(worker.containers[0])).toMatchObject({
      RETENTION_ARCHIVE_S3_URL: 's3://audit-archive/prod',
      RETENTION_ARCHIVE_S3_REGION: 'us-east-1',
      RETENTION_ARCHIVE_S3_ENDPOINT: 'http://minio.storage:9000',
      RETENTION_ARCHIVE_S3_FORCE_PATH_STYLE: 'true',
      RETENTION_ARCHIVE_S3_SSE: 'AES256',
      RETENTION_ARCHIVE_S3_OBJECT_LOCK_DAYS: '2190',
      RETENTION_ARCHIVE_S3_ACCESS_KEY_ID_FILE: '/run/secrets/audit-server/retention-s3-access-key-id',
      RETENTION_ARCHIVE_S3_SECRET_ACCESS_KEY_FILE: '/run/secrets/audit-server/retention-s3-secret-access-key',
    });
    const items = worker.volumes.find((v: any) => v.name === 'worker-secrets').secret.items.map((i: any) => i.key);
    expect(items).toEqual(expect.arrayContaining(['retention-s3-access-key-id', 'retention-s3-secret-access-key']));
    const api = podOf(objects, 'audit-server');
    expect(Object.keys(envOf(api.containers[0])).filter((k) => k.startsWith('RETENTION_'))).toEqual([]);
    expect(JSON.stringify(api.volumes)).not.toContain('retention-s3');
    const minioRule = { to: [{ podSelector: { matchLabels: { app: 'minio' } }, namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'storage' } } }], ports: [{ protocol: 'TCP', port: 9000 }] };
    expect(egressOf(objects, 'audit-server-worker')).toContainEqual(minioRule);
    expect(egressOf(objects, 'audit-server')).not.toContainEqual(minioRule);
    expect(validateManifests(objects)).toEqual([]);
  });

  it('with a web identity: the worker\'s own ServiceAccount, an STS-only projected token, the SDK\'s variables, HTTPS egress', () => {
    const objects = synth(IRSA);
    const sa = get(objects, 'ServiceAccount', 'audit-server-worker');
    expect(sa.automountServiceAccountToken).toBe(false);
    const worker = podOf(objects, 'audit-server-worker');
    expect(worker.serviceAccountName).toBe('audit-server-worker');
    expect(worker.automountServiceAccountToken).toBe(false);
    expect(podOf(objects, 'audit-server').serviceAccountName).toBe('audit-server');
    expect(worker.volumes).toContainEqual({
      name: 'web-identity-token',
      projected: { defaultMode: 0o440, sources: [{ serviceAccountToken: { audience: 'sts.amazonaws.com', expirationSeconds: 86400, path: 'token' } }] },
    });
    const c = worker.containers[0];
    expect(c.volumeMounts).toContainEqual({ name: 'web-identity-token', mountPath: '/var/run/secrets/audit-server/web-identity', readOnly: true });
    expect(envOf(c)).toMatchObject({
      AWS_ROLE_ARN: 'arn:aws:iam::111122223333:role/audit-archive-writer',
      AWS_WEB_IDENTITY_TOKEN_FILE: '/var/run/secrets/audit-server/web-identity/token',
      RETENTION_ARCHIVE_S3_SSE: 'aws:kms',
      RETENTION_ARCHIVE_S3_KMS_KEY_ID: 'alias/audit-archive',
    });
    expect(Object.keys(envOf(c)).filter((k) => k.includes('ACCESS_KEY'))).toEqual([]);
    // The init container (migrations) of the pod, if any, and the api get no token.
    expect(JSON.stringify(podOf(objects, 'audit-server'))).not.toContain('web-identity');
    expect(egressOf(objects, 'audit-server-worker')).toContainEqual({ to: [{ ipBlock: { cidr: '0.0.0.0/0' } }], ports: [{ protocol: 'TCP', port: 443 }] });
    expect(egressOf(objects, 'audit-server').filter((r) => r.ports[0].port === 443)).toEqual([]);
    expect(validateManifests(objects)).toEqual([]);
  });

  it('sets values the server\'s configuration accepts in the worker', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'archive-bucket-'));
    try {
      for (const props of [STATIC, IRSA]) {
        const objects = synth(props);
        const c = podOf(objects, 'audit-server-worker').containers[0];
        const env: Record<string, string> = { ...get(objects, 'ConfigMap', 'audit-server-config').data, AUDIT_VERIFIER_KEY: 'k+01020304+AQ==' };
        for (const e of c.env) if (typeof e.value === 'string' && !e.name.endsWith('_FILE')) env[e.name] = e.value;
        for (const name of ['RETENTION_ARCHIVE_S3_ACCESS_KEY_ID', 'RETENTION_ARCHIVE_S3_SECRET_ACCESS_KEY']) {
          if (!c.env.some((e: any) => e.name === `${name}_FILE`)) continue;
          fs.writeFileSync(path.join(dir, name), 'stand-in\n');
          env[`${name}_FILE`] = path.join(dir, name);
        }
        const config = loadConfig(env);
        expect(config.AUDIT_ROLE).toBe('worker');
        expect(config.RETENTION_ARCHIVE_S3_URL).toBe(props.retention!.s3!.bucketUrl);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each<[string, Partial<NonNullable<NonNullable<AuditServerProps['retention']>['s3']>>, string]>([
    ['a bucket URL that is not s3://', { bucketUrl: 'https://audit-archive/x' }, "invalid retention.s3.bucketUrl: 'https://audit-archive/x' (expected s3://bucket or s3://bucket/prefix)"],
    ['a region with spaces', { region: 'eu central' }, "invalid retention.s3.region: 'eu central' (expected a region name such as eu-central-1)"],
    ['an endpoint without scheme', { endpoint: 'minio:9000' }, "invalid retention.s3.endpoint: 'minio:9000' (expected an http(s) URL)"],
    ['a KMS key without KMS encryption', { kmsKeyId: 'alias/x', encryption: ArchiveEncryption.AES256 }, 'invalid retention.s3.kmsKeyId: needs encryption ArchiveEncryption.KMS or KMS_DSSE'],
    ['zero lock days', { objectLockDays: 0 }, 'invalid retention.s3.objectLockDays'],
    ['both credential kinds', { staticAccessKey: true, webIdentity: { roleArn: 'arn:aws:iam::111122223333:role/x' } }, 'invalid retention.s3: staticAccessKey and webIdentity are exclusive'],
    ['a role ARN that is not one', { webIdentity: { roleArn: 'audit-archive-writer' } }, "invalid retention.s3.webIdentity.roleArn: 'audit-archive-writer' (expected arn:aws:iam::<account>:role/<name>)"],
  ])('refuses %s, naming the prop', (_what, change, message) => {
    expect(() => synth({ retention: { s3: { bucketUrl: 's3://audit-archive', region: 'eu-central-1', ...change } } })).toThrow(message);
  });
});
