/* eslint-disable @typescript-eslint/no-unsafe-return --
   tests walk synthesized manifest JSON, whose shape the assertions themselves check */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Testing, Yaml } from 'cdk8s';
import { METRIC_NAMES, PROCESS_METRIC_PREFIX } from '../../server/src/observability/metric-names';
import { Metrics } from '../../server/src/observability/metrics';
import { AuditServer } from '../src/audit-server';
import { auditServerAlertRules, ObservabilityStack } from '../src/observability-stack';
import type { ObservabilityStackProps } from '../src/observability-stack';
import { validateManifests } from '../src/validate';

function synth(props: ObservabilityStackProps = {}, monitoring = false): any[] {
  const chart = Testing.chart();
  const stack = new ObservabilityStack(chart, 'Observability', props);
  if (monitoring) {
    const server = new AuditServer(chart, 'AuditServer', { otlpCollector: stack.otlpPeer });
    stack.addPrometheusMonitoring(chart, server, { selectorLabels: { release: 'kube-prometheus-stack' } });
  }
  return Testing.synth(chart);
}
const get = (objects: any[], kind: string, name: string): any => {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind} ${name}`);
  return o;
};

/** Parses one YAML document with cdk8s' own loader (it reads files). */
function parseYaml(text: string): any {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otel-config-'));
  try {
    fs.writeFileSync(path.join(dir, 'config.yaml'), text);
    return Yaml.load(path.join(dir, 'config.yaml'))[0];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Metric names a PromQL expression reads: identifiers directly followed by a label matcher. */
function metricsIn(expr: string): string[] {
  return [...expr.replace(/"[^"]*"/g, '""').matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\{/g)].map((m) => m[1]!);
}

describe('ObservabilityStack', () => {
  const objects = synth();

  it('matches the snapshot', () => {
    expect(objects).toMatchSnapshot();
  });

  it('runs an OpenTelemetry Collector: OTLP gRPC and HTTP in, OpenObserve out with basic auth from the Secret', () => {
    const parsed = parseYaml(get(objects, 'ConfigMap', 'otel-collector-config').data['config.yaml']);
    expect(parsed.receivers.otlp.protocols).toEqual({ grpc: { endpoint: '0.0.0.0:4317' }, http: { endpoint: '0.0.0.0:4318' } });
    expect(parsed.exporters['otlphttp/openobserve'].endpoint).toBe('http://openobserve.smedrec-audit.svc.cluster.local:5080/api/default');
    expect(parsed.extensions['basicauth/openobserve'].client_auth).toEqual({ username: '${env:OPENOBSERVE_USER}', password: '${env:OPENOBSERVE_PASSWORD}' });
    for (const signal of ['traces', 'metrics', 'logs']) {
      expect(parsed.service.pipelines[signal]).toEqual({ receivers: ['otlp'], processors: ['memory_limiter', 'batch'], exporters: ['otlphttp/openobserve'] });
    }
    const env = get(objects, 'Deployment', 'otel-collector').spec.template.spec.containers[0].env;
    expect(env.map((e: any) => [e.name, e.valueFrom.secretKeyRef])).toEqual([
      ['OPENOBSERVE_USER', { name: 'openobserve-root', key: 'email' }],
      ['OPENOBSERVE_PASSWORD', { name: 'openobserve-root', key: 'password' }],
    ]);
  });

  it('runs OpenObserve as a StatefulSet with a PVC and root credentials from a Secret reference', () => {
    const sts = get(objects, 'StatefulSet', 'openobserve');
    const c = sts.spec.template.spec.containers[0];
    expect(c.env.filter((e: any) => e.valueFrom).map((e: any) => [e.name, e.valueFrom.secretKeyRef.key])).toEqual([
      ['ZO_ROOT_USER_EMAIL', 'email'],
      ['ZO_ROOT_USER_PASSWORD', 'password'],
    ]);
    expect(sts.spec.volumeClaimTemplates[0].metadata.name).toBe('data');
    expect(c.volumeMounts).toContainEqual({ name: 'data', mountPath: '/data' });
  });

  it('lets only stack pods send telemetry and only the collector write to OpenObserve', () => {
    const collector = get(objects, 'NetworkPolicy', 'otel-collector').spec;
    expect(collector.ingress.map((r: any) => r.ports[0].port)).toEqual([4317, 4318]);
    expect(collector.ingress[0].from).toEqual([{ podSelector: { matchLabels: { 'app.kubernetes.io/part-of': 'smedrec-audit' } } }]);
    const oo = get(objects, 'NetworkPolicy', 'openobserve').spec;
    expect(oo.ingress).toEqual([
      { from: [{ podSelector: { matchLabels: get(objects, 'Deployment', 'otel-collector').spec.selector.matchLabels } }], ports: [{ protocol: 'TCP', port: 5080 }] },
    ]);
  });

  it('creates no prometheus-operator objects unless asked', () => {
    expect(objects.some((o) => String(o.apiVersion).startsWith('monitoring.coreos.com'))).toBe(false);
  });

  it('passes the schema and every policy rule', () => {
    expect(validateManifests(objects)).toEqual([]);
  });

  it('fails when the organization is not a plain name', () => {
    expect(() => synth({ organization: 'My Org' })).toThrow("invalid organization: 'My Org' (expected lower-case letters, digits and _)");
  });
});

describe('ObservabilityStack prometheus-operator monitoring', () => {
  const objects = synth({}, true);

  it('adds a ServiceMonitor for the api, a PodMonitor for the worker and a PrometheusRule', () => {
    const sm = get(objects, 'ServiceMonitor', 'audit-server');
    expect(sm.metadata.labels.release).toBe('kube-prometheus-stack');
    expect(sm.spec.endpoints).toEqual([{ port: 'http', path: '/metrics', interval: '30s', scheme: 'http' }]);
    expect(sm.spec.selector.matchLabels).toEqual(get(objects, 'Service', 'audit-server').spec.selector);
    expect(get(objects, 'PodMonitor', 'audit-server-worker').spec.selector.matchLabels['app.kubernetes.io/component']).toBe('worker');
    const rules = get(objects, 'PrometheusRule', 'audit-server').spec.groups[0].rules;
    expect(rules.map((r: any) => r.alert)).toContain('AuditLedgerVerificationFailed');
  });

  it('passes the schema (strict CRD shapes) and every policy rule', () => {
    expect(validateManifests(objects)).toEqual([]);
  });
});

describe('alert expressions', () => {
  const rules = auditServerAlertRules('smedrec-audit', 'audit-server');
  const used = [...new Set(rules.flatMap((r) => metricsIn(r.expr)))].sort();

  it('read metrics (found in the expressions)', () => {
    expect(used).toEqual(expect.arrayContaining(['audit_database_up', 'audit_ledger_verification_failures_total', 'http_requests_total']));
  });

  it('use only names from the server metric registry (metric-names.ts)', () => {
    const histograms = [METRIC_NAMES.httpRequestDurationSeconds, METRIC_NAMES.ingestBatchSize, METRIC_NAMES.dbQueryDurationSeconds];
    const allowed = new Set<string>([
      ...Object.values(METRIC_NAMES),
      ...histograms.flatMap((h) => [`${h}_bucket`, `${h}_sum`, `${h}_count`]),
      'up', // synthesized by Prometheus for every target
    ]);
    const unknown = used.filter((m) => !allowed.has(m) && !m.startsWith(PROCESS_METRIC_PREFIX));
    expect(unknown).toEqual([]);
  });

  it('use only metrics a live server registry actually exposes', async () => {
    const metrics = new Metrics();
    const exposed = await metrics.registry.metrics();
    for (const name of used.filter((m) => m !== 'up')) {
      expect({ name, exposed: new RegExp(`^# TYPE ${name.replace(/_(bucket|sum|count)$/, '')} `, 'm').test(exposed) }).toEqual({ name, exposed: true });
    }
    metrics.registry.clear();
  });

  it('select labels the server sets (status, not status_code)', () => {
    const metrics = new Metrics();
    metrics.httpRequests.inc({ method: 'GET', route: '/x', status: '500' });
    return metrics.registry.getSingleMetricAsString('http_requests_total').then((text) => {
      expect(text).toMatch(/status="500"/);
      expect(rules.find((r) => r.alert === 'AuditServerHighErrorRate')!.expr).toMatch(/status=~"5\.\."/);
      metrics.registry.clear();
    });
  });
});
